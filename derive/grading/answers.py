"""Reading hand answers: a YAML/JSON mapping, or a class CSV.

Answers keep the text exactly as written (``.1875``, ``0.570``), because the
digits a person shows are what tell a rounded answer from a wrong one.  YAML
numbers are read back from the document's own scalars, JSON numbers with
``parse_float=str``; nothing is evaluated here.

>>> read_answers_text("w1: .1875\\nz1: 0.30\\ndL/dw5: '-0.35*a1'\\n", "a.yaml")
{'w1': '.1875', 'z1': '0.30', 'dL/dw5': '-0.35*a1'}
>>> decimals("0.570"), decimals("12"), decimals("1.5e-3"), decimals("3/16")
(3, 0, 4, None)
>>> significant("0.0006845"), significant("0.50"), significant("-12"), significant("x")
(4, 2, 2, None)
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from derive.safetext import CsvError, csv_rows, shorten
from derive.engine.spec import SpecError, read_data, read_text

MAX_CSV_BYTES = 32 * 1024 * 1024
MAX_CSV_ROWS = 100_000
MAX_ANSWERS = 5000           # answers in one mapping / columns in one CSV
MAX_LIST = 10_000            # numbers in one list answer

_NUMBER = re.compile(r"^[+-]?(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$")


def decimals(text: str) -> int | None:
    """Decimal places shown by a number as written (None if not a plain number)."""
    t = text.strip()
    m = _NUMBER.match(t)
    if not m or not (m.group(1) or m.group(2)):
        return None
    return len(m.group(2) or "") - int(m.group(3) or 0)


def significant(text: str) -> int | None:
    """Significant figures shown by a number as written (None if not a plain
    number); trailing zeros of a whole number do not count ("100" shows 1)."""
    m = _NUMBER.match(text.strip())
    if not m or not (m.group(1) or m.group(2)):
        return None
    whole, frac = m.group(1) or "", m.group(2) or ""
    if m.group(2) is None:
        digits = whole.lstrip("0").rstrip("0")
    else:
        digits = (whole + frac).lstrip("0")
    return max(len(digits), 1)


#: class-CSV columns that describe the student and are carried through, never graded
META_COLUMNS = {"name", "first name", "last name", "first_name", "last_name", "firstname", "lastname",
                "surname", "given name", "full name", "student", "student name", "email", "e-mail", "mail",
                "section", "group", "login", "username", "comment", "comments"}
#: the id row that holds each question's points instead of a student's answers
POINTS_ROW = "points"


@dataclass
class Batch:
    """A class CSV: one row of answers per student."""

    ids: list
    columns: list                     # quantity names, in the file's order
    rows: list = field(default_factory=list)   # per student: {name: text}
    meta: list = field(default_factory=list)   # columns carried through (name, email, ...)
    fields: list = field(default_factory=list)  # per student: {meta column: text}
    points: dict = field(default_factory=dict)  # question -> points (a "points" row)


def _scalar_texts(node, where="answers"):
    """Raw text of a composed YAML node (numbers as written)."""
    if isinstance(node, yaml.ScalarNode):
        return node.value
    if isinstance(node, yaml.SequenceNode):
        if len(node.value) > MAX_LIST:
            raise SpecError(where, f"a list answer has more than {MAX_LIST} numbers")
        return [_scalar_texts(n, where) for n in node.value]
    raise SpecError(where, "an answer must be a number, an expression or a list of numbers")


def _json_texts(value, where="answers"):
    if isinstance(value, list):
        return [_json_texts(v, where) for v in value]
    if isinstance(value, (str, bool)) or value is None:
        return value if isinstance(value, str) else json.dumps(value)
    raise SpecError(where, "an answer must be a number, an expression or a list of numbers")


def read_answers_text(text: str, source: str) -> dict:
    """A mapping of quantity names to answers as written (str or nested lists)."""
    data = read_data(text, source)     # validates: safe YAML, no duplicate keys or aliases
    if not isinstance(data, dict):
        raise SpecError("", "an answers file must be a mapping of quantity names to answers")
    if len(data) > MAX_ANSWERS:
        raise SpecError("", f"more than {MAX_ANSWERS} answers")
    out: dict = {}
    if source.endswith(".json"):
        raw = json.loads(text, parse_float=str, parse_int=str)
        for name, value in raw.items():
            out[str(name)] = _json_texts(value, str(name))
        return out
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    for key_node, value_node in root.value:
        name = str(key_node.value)
        if isinstance(value_node, yaml.ScalarNode) and value_node.tag.endswith(":null"):
            continue  # "w1:" with nothing: not answered
        out[name] = _scalar_texts(value_node, name)
    return out


def read_batch_text(text: str, source: str = "answers.csv") -> Batch:
    r"""A class CSV: an ``id`` column and one column per quantity.

    The separator is ``,`` or ``;`` (whichever the header uses); the ``id``
    column and the student columns (name, email, ...: META_COLUMNS) are
    found whatever their case; a row whose id is ``points`` gives each
    question's points.  An empty file, a header with no student, a row
    without an id and an id given twice are refused.

    >>> b = read_batch_text("ID;Name;w1\npoints;;2\ns1;Ada;0,19\n")
    >>> b.ids, b.columns, b.meta, b.fields, b.rows, b.points
    (['s1'], ['w1'], ['Name'], [{'Name': 'Ada'}], [{'w1': '0,19'}], {'w1': 2.0})
    """
    reader = _rows(text, _delimiter(text))
    try:
        header = next(reader)[1]
    except StopIteration:
        raise SpecError("line 1", "the CSV is empty") from None
    header = [h.strip() for h in header]
    lowered = [h.lower() for h in header]
    if "id" not in lowered:
        raise SpecError("line 1", "a class CSV needs an 'id' column")
    if len(header) > MAX_ANSWERS:
        raise SpecError("line 1", f"more than {MAX_ANSWERS} columns")
    seen = set()
    for h in header:
        if not h:
            raise SpecError("line 1", "a column has no name")
        if h in seen:
            raise SpecError("line 1", f"column {h!r} appears twice")
        seen.add(h)
    id_col = lowered.index("id")
    meta = [h for k, h in enumerate(header) if k != id_col and h.lower() in META_COLUMNS]
    columns = [h for k, h in enumerate(header) if k != id_col and h not in meta]
    batch = Batch([], columns, meta=meta)
    first_line: dict = {}
    for lineno, row in reader:
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise SpecError(f"line {lineno}", f"expected {len(header)} cells, found {len(row)}")
        if len(batch.ids) >= MAX_CSV_ROWS:
            raise SpecError(f"line {lineno}", f"more than {MAX_CSV_ROWS} rows")
        sid = row[id_col].strip()
        if sid.lower() == POINTS_ROW:
            batch.points = _points_row(header, row, columns, lineno)
            continue
        if not sid:
            raise SpecError(f"line {lineno}", "no id (every row needs the student's id)")
        if sid in first_line:
            raise SpecError(f"line {lineno}", f"id {shorten(sid, 60)!r} appears twice (first on line "
                                              f"{first_line[sid]}); one row per student")
        first_line[sid] = lineno
        answers, fields = {}, {}
        for k, (h, cell) in enumerate(zip(header, row)):
            if k == id_col:
                continue
            cell = cell.strip()
            if h in meta:
                fields[h] = cell
            elif cell:
                answers[h] = _cell(cell, f"line {lineno}, column {h}")
        batch.ids.append(sid)
        batch.rows.append(answers)
        batch.fields.append(fields)
    if not batch.ids:
        raise SpecError("line 2", "the CSV has a header but no student rows")
    return batch


def _delimiter(text: str) -> str:
    """``;`` when the header line has more of them than commas, else ``,``."""
    first = text.split("\n", 1)[0]
    return ";" if first.count(";") > first.count(",") else ","


def _points_row(header, row, columns, lineno) -> dict:
    out = {}
    for h, cell in zip(header, row):
        if h in columns and cell.strip():
            out[h] = points_value(cell, f"line {lineno}, column {h}")
    return out


def points_value(text, where: str) -> float:
    """A question's points: a finite number >= 0 (a decimal comma allowed)."""
    try:
        v = float(str(text).strip().replace(",", "."))
    except ValueError:
        raise SpecError(where, f"points must be a number, got {shorten(str(text), 20)!r}") from None
    if not (0 <= v < 1e6):
        raise SpecError(where, "points must be between 0 and 1e6")
    return v


def read_points(path) -> dict:
    """``--points FILE``: a YAML/JSON mapping question -> points, or a CSV
    with the columns question,points."""
    p = Path(path)
    text = read_text(p)
    if p.suffix.lower() == ".csv":
        rows = [r for _line, r in _rows(text, _delimiter(text))]
        if rows and [c.strip().lower() for c in rows[0][:2]] == ["question", "points"]:
            rows = rows[1:]
        out = {}
        for k, r in enumerate(rows, start=1):
            if not any(c.strip() for c in r):
                continue
            if len(r) != 2:
                raise SpecError(f"line {k}", "expected two cells: question,points")
            out[r[0].strip()] = points_value(r[1], f"line {k}")
        return out
    data = read_data(text, str(p))
    if not isinstance(data, dict):
        raise SpecError("", "a points file is a mapping of questions to points")
    return {str(k): points_value(v, str(k)) for k, v in data.items()}


def _rows(text: str, delimiter: str = ","):
    """csv_rows with its refusal as a SpecError (cells are bounded)."""
    try:
        yield from csv_rows(text, delimiter=delimiter)
    except CsvError as exc:
        raise SpecError(exc.where, exc.what) from None


def _cell(cell: str, where: str):
    if cell.startswith("["):
        try:
            value = json.loads(cell, parse_float=str, parse_int=str)
        except (json.JSONDecodeError, RecursionError):
            raise SpecError(where, "a list answer must be a JSON list such as [0.1, 0.2]") from None
        return _json_texts(value, where)
    return cell


def read_answers(path):
    """The answers of a file: a dict (YAML/JSON) or a :class:`Batch` (CSV).
    Only a regular file of bounded size is read (see :func:`derive.engine.spec.read_text`)."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in (".yaml", ".yml", ".json", ".csv"):
        raise SpecError("", "an answers file must end in .yaml, .yml, .json or .csv")
    if suffix == ".csv":
        return read_batch_text(read_text(p, MAX_CSV_BYTES), str(p))
    return read_answers_text(read_text(p), str(p))


def as_texts(answers: dict) -> dict:
    """Answers given from Python (numbers, strings, lists) as written text.

    >>> as_texts({"w1": 0.1875, "z1": [0.3, 1]})
    {'w1': '0.1875', 'z1': ['0.3', '1']}
    """
    def conv(v):
        if isinstance(v, bool):
            raise SpecError("answers", f"{v!r} is not an answer")
        if isinstance(v, (int, float)):
            return repr(v)
        if isinstance(v, str):
            return v
        if isinstance(v, (list, tuple)):
            return [conv(x) for x in v]
        if hasattr(v, "is_Number") and v.is_Number:
            return str(v)
        raise SpecError("answers", f"{v!r} is not an answer")
    return {str(k): conv(v) for k, v in answers.items()}
