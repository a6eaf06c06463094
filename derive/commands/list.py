"""``derive list``: every built-in problem with its source."""
from __future__ import annotations

import json


def add_parser(sub):
    p = sub.add_parser("list", help="list the built-in problems")
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.set_defaults(run=run)


def run(args) -> int:
    from derive.problems import builtins

    rows = [p.listing() for p in builtins()]
    if args.format == "json":
        print(json.dumps(rows, indent=2))
        return 0
    width = max(len(r["id"]) for r in rows)
    src = max(len(r["source"]) for r in rows)
    for r in rows:
        print(f"{r['id'].ljust(width)}  {r['source'].ljust(src)}  {r['title']}")
    return 0
