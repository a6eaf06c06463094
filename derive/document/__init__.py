"""The documents: LaTeX/PDF (render), the answer key (key, keyparts,
coverage, errata), variant sheets (sheet, variants) and HTML (html, with
figures as SVG from svgfig)."""
