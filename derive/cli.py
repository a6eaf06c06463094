"""The ``derive`` command line: a thin layer over the Python API.

Each command lives in its own module under :mod:`derive.commands` with
``add_parser(subparsers)`` and ``run(args) -> int``.  Errors the user can fix
become one line ``derive: error: WHERE: WHAT`` and exit code 2.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from .errors import UserError, as_user_error

#: command name -> module under derive.commands, in the order `--help` lists them
COMMANDS = ["list", "solve", "key", "check", "codegen", "variants", "serve"]


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2, as the contract says
        raise UserError("usage", message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="derive", description="Worked, verified solutions of neural-network maths.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"derive.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"derive.commands.{name}":
                continue  # a command not built yet is simply not offered
            raise
        module.add_parser(sub)
    return parser


def main(argv=None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return int(args.run(args) or 0)
    except UserError as exc:
        print(f"derive: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
    except Exception as exc:  # noqa: BLE001 - turn known input errors into one line
        err = as_user_error(exc)
        if err is None:
            raise
        print(f"derive: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
