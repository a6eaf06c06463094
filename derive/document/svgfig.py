r"""Figures as SVG for web pages, from the very TikZ/pgfplots the PDF uses.

Each figure block goes through its LaTeX partial (``templates/partials/
figure-<kind>.tex.j2``), inside ``templates/html/figures.tex.j2``, which
ships every figure as a page of its own, cropped to the drawing; pdfLaTeX
compiles them all in one run and ``pdftocairo -svg`` (poppler-utils) turns
each page into SVG. Results are cached by the SHA-256 of the figure's own
LaTeX document, so a key rebuilt with the same figures compiles nothing.

The SVG is returned ready to inline in HTML: no XML declaration, every
``id`` (glyphs, clip paths) prefixed by the figure's hash, since ids are
global to an HTML document and two figures would otherwise share glyphs,
and styles as presentation attributes, which a strict Content-Security-Policy
allows.

>>> svgs = figure_svgs([])
>>> svgs
[]
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from derive.typeset import blocks as B
from derive.document.render import _write_atomic, block_context, compile_pdf, make_env, tex_engine

#: seconds one pdftocairo conversion may take
CONVERT_TIMEOUT = 60
#: bump to invalidate every cached SVG (a change in how they are made)
CACHE_VERSION = "1"
#: the properties pdftocairo writes in style="...", all SVG presentation attributes
PRESENTATION = {"fill", "fill-opacity", "fill-rule", "stroke", "stroke-width", "stroke-linecap",
                "stroke-linejoin", "stroke-miterlimit", "stroke-opacity", "stroke-dasharray",
                "stroke-dashoffset", "clip-rule", "opacity"}


def cache_dir() -> Path:
    """``$DERIVE_CACHE/svg``, else ``$XDG_CACHE_HOME/derive/svg``, else ``~/.cache/derive/svg``."""
    if os.environ.get("DERIVE_CACHE"):
        return Path(os.environ["DERIVE_CACHE"]) / "svg"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "derive" / "svg"


def available() -> bool:
    """Whether figures can be made here (pdfLaTeX and pdftocairo)."""
    return tex_engine() is not None and shutil.which("pdftocairo") is not None


def _figure_context(fig: B.Figure) -> dict:
    ctx = dict(block_context(fig))
    ctx["caption"] = ""       # the caption is HTML text beside the drawing
    return ctx


def _document(contexts: list) -> str:
    return make_env().get_template("html/figures.tex.j2").render(figures=contexts)


def _digest(context: dict) -> str:
    text = CACHE_VERSION + "\n" + _document([context])
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _inline(svg: str, prefix: str) -> str:
    """An SVG file's text made ready to sit inside an HTML page."""
    svg = re.sub(r"^<\?xml[^>]*\?>\s*", "", svg)
    svg = re.sub(r'\bid="([^"]+)"', lambda m: f'id="{prefix}{m.group(1)}"', svg)
    svg = re.sub(r'href="#([^"]+)"', lambda m: f'href="#{prefix}{m.group(1)}"', svg)
    svg = re.sub(r"url\(#([^)]+)\)", lambda m: f"url(#{prefix}{m.group(1)})", svg)
    return re.sub(r'\bstyle="([^"]*)"', _attributes, svg).strip()


def _attributes(m) -> str:
    """``style="fill:red;stroke:none"`` as ``fill="red" stroke="none"``: a page
    whose Content-Security-Policy forbids inline styles (the checking page's)
    still draws the figure."""
    pairs = [p.split(":", 1) for p in m.group(1).split(";") if ":" in p]
    if not all(k.strip() in PRESENTATION for k, _ in pairs):
        return m.group(0)
    return " ".join(f'{k.strip()}="{v.strip()}"' for k, v in pairs)


def figure_svgs(figures: list) -> list:
    """The inline SVG of each figure block (None for a kind without a
    drawing, or where no TeX engine or pdftocairo is installed)."""
    out: list = [None] * len(figures)
    todo = []
    for k, fig in enumerate(figures):
        ctx = _figure_context(fig)
        if not ctx["kind"].startswith("figure-"):
            continue
        digest = _digest(ctx)
        cached = cache_dir() / f"{digest}.svg"
        if cached.is_file():
            out[k] = _inline(cached.read_text(encoding="utf-8"), f"f{digest[:10]}-")
        else:
            todo.append((k, ctx, digest))
    if todo and available():
        for (k, _, digest), svg in zip(todo, _compile([ctx for _, ctx, _ in todo])):
            _write_atomic(cache_dir() / f"{digest}.svg", svg)
            out[k] = _inline(svg, f"f{digest[:10]}-")
    return out


def _compile(contexts: list) -> list:
    """One pdfLaTeX run for all ``contexts`` (a page each), then one SVG per page."""
    with tempfile.TemporaryDirectory(prefix="derive-svg-") as tmp:
        pdf = compile_pdf(_document(contexts), Path(tmp) / "figures.pdf", name="figures")
        svgs = []
        for page in range(1, len(contexts) + 1):
            target = Path(tmp) / f"page-{page}.svg"
            subprocess.run(["pdftocairo", "-svg", "-f", str(page), "-l", str(page), str(pdf), str(target)],
                           check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=CONVERT_TIMEOUT)
            svgs.append(target.read_text(encoding="utf-8"))
    return svgs
