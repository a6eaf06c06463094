"""``derive key``: the answer key, ``DIR/answer-key.tex`` and ``.pdf``."""
from __future__ import annotations

import sys


def add_parser(sub):
    p = sub.add_parser("key", help="the answer key of every built-in (LaTeX and PDF)")
    p.add_argument("--out", metavar="DIR", default="output", help="folder to write into (default output/)")
    p.add_argument("--only", metavar="ID", action="append", default=[],
                   help="only this built-in (repeatable)")
    p.add_argument("--no-pdf", action="store_true", help="write the .tex only")
    p.add_argument("--format", choices=["tex", "html"], default="tex",
                   help="tex: answer-key.tex and .pdf (default); html: one self-contained "
                        "answer-key.html (MathML, inline SVG figures, no network)")
    p.set_defaults(run=run)


def run(args) -> int:
    from derive.outfile import check_folder

    check_folder(args.out)
    if args.format == "html":
        from derive.document.html import write_key as write_html

        path = write_html(args.out, only=args.only)
        print(f"wrote {path}")
        return 0
    from derive.document.key import write_key

    result = write_key(args.out, only=args.only, pdf=not args.no_pdf)
    print(f"wrote {result.tex}" + (f" and {result.pdf}" if result.pdf else "")
          + f" ({len(result.problems)} problems)")
    if result.note:
        print(f"derive: {result.note}", file=sys.stderr)
    return 0
