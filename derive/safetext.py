"""User text made safe to show: on a terminal, in LaTeX, in a CSV.

One rule for control characters everywhere (error lines, ``check``'s table,
names and questions that reach the PDF): every code point below U+0020, U+007F
and U+0080-U+009F is shown as a visible escape (``\\n``, ``\\t``, ``\\r``,
otherwise ``\\xHH``), so an ANSI sequence ``ESC [ 3 1 m`` prints as the
harmless text ``\\x1b[31m`` and nothing invisible reaches TeX.  The
bidirectional overrides (U+202A-U+202E, U+2066-U+2069), which make a
terminal show text in another order than it is read, are shown as ``\\uXXXX``.  Multi-line
prose (a spec's ``question``) may keep its line breaks and tabs.

CSV cells derive writes that a spreadsheet would run as a formula (starting
with ``= + - @``, a tab or a carriage return, and not a plain number) get a
leading apostrophe, the OWASP rule; :func:`csv_uncell` undoes it when derive
reads its own file back.  :func:`csv_rows` reads a CSV with bounded cells.

>>> visible("ok\\x1b[31mred\\x00")
'ok\\\\x1b[31mred\\\\x00'
>>> csv_cell("=cmd|' /C calc'!A0"), csv_cell("-0.35"), csv_uncell(csv_cell("@SUM(A1)"))
("'=cmd|' /C calc'!A0", '-0.35', '@SUM(A1)')
>>> shorten("x" * 500, 12)
'xxxxxxxxxxxx... (500 characters)'
"""
from __future__ import annotations

import csv
import io
import re

#: every control character (C0, DEL and C1), and the bidirectional overrides
#: that make a terminal show text in another order than it is read
CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
CONTROL_NOT_LINES = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}

#: characters of one CSV cell (csv's own default limit is 131072)
MAX_CELL = 10_000
#: characters of user text echoed on one line
MAX_SHOWN = 200


def _escape(m) -> str:
    ch = m.group(0)
    return _NAMED.get(ch, f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}")


def visible(text, keep_lines: bool = False) -> str:
    """``text`` with every control character shown as a visible escape;
    ``keep_lines`` leaves line breaks and tabs for multi-line prose."""
    return (CONTROL_NOT_LINES if keep_lines else CONTROL).sub(_escape, str(text))


def shorten(text, limit: int = MAX_SHOWN) -> str:
    """At most ``limit`` characters of ``text``, saying how long it was."""
    text = str(text)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def shown(text, limit: int = MAX_SHOWN) -> str:
    """User text for one line of a terminal: visible and short."""
    return visible(shorten(text, limit))


_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value) -> str:
    """A cell a spreadsheet shows as text, never runs as a formula."""
    text = str(value)
    if text.startswith(_FORMULA_START) and not _NUMBER.match(text):
        return "'" + text
    return text


def csv_uncell(text: str) -> str:
    """The value :func:`csv_cell` protected."""
    if text.startswith("'") and text[1:].startswith(_FORMULA_START) and not _NUMBER.match(text[1:]):
        return text[1:]
    return text


class CsvError(ValueError):
    """A CSV that cannot be read: ``where`` (a line) and ``what``."""

    def __init__(self, where: str, what: str):
        self.where, self.what = where, what
        super().__init__(f"{where}: {what}")


def csv_rows(text: str, max_cell: int = MAX_CELL, delimiter: str = ","):
    """The rows of a CSV text as lists of cells (line numbers as in the
    file), with each cell at most ``max_cell`` characters; CsvError names
    the line otherwise.  ``delimiter``: ``,`` or ``;`` (a European class list)."""
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            line = f"line {reader.line_num}"
            if "field larger" in str(exc):      # csv's own limit, far above ours
                raise CsvError(line, f"a cell is longer than {max_cell} characters") from None
            raise CsvError(line, f"not a readable CSV ({exc})") from None
        for k, cell in enumerate(row):
            if len(cell) > max_cell:
                raise CsvError(f"line {reader.line_num}",
                               f"cell {k + 1} is longer than {max_cell} characters ({len(cell)})")
        yield reader.line_num, row


__all__ = ["CONTROL", "CsvError", "MAX_CELL", "csv_cell", "csv_rows", "csv_uncell", "shorten", "shown",
           "visible"]
