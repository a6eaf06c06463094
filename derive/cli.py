"""The ``derive`` command line: a thin layer over the Python API.

Each command lives in its own module under :mod:`derive.commands` with
``add_parser(subparsers)`` and ``run(args) -> int``.  Errors the user can fix
become one line ``derive: error: WHERE: WHAT`` and exit code 2.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from derive.budget import TimeLimitExceeded, check_environment
from derive.errors import UserError, as_user_error
from derive.safetext import shorten, visible

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


#: characters of one error line (user text inside it is shortened first)
MAX_ERROR_LINE = 1000


def error_line(where: str, what: str) -> str:
    """``derive: error: WHERE: WHAT`` as one short line without control characters."""
    text = f"{shorten(where, 300)}: {what}" if where else str(what)
    return "derive: error: " + visible(shorten(text, MAX_ERROR_LINE))


def main(argv=None) -> int:
    try:
        args = build_parser().parse_args(argv)
        check_environment()
        return int(args.run(args) or 0)
    except UserError as exc:
        print(error_line(exc.where, exc.what), file=sys.stderr)
        return 2
    except TimeLimitExceeded as exc:
        print(error_line(exc.where or "time limit", str(exc)), file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
    except Exception as exc:  # noqa: BLE001 - turn known input errors into one line
        err = as_user_error(exc)
        if err is None:
            raise
        print(error_line(err.where, err.what), file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
