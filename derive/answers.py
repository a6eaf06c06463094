"""Reading hand answers: a YAML/JSON mapping, or a class CSV.

Answers keep the text exactly as written (``.1875``, ``0.570``), because the
digits a person shows are what tell a rounded answer from a wrong one.  YAML
numbers are read back from the document's own scalars, JSON numbers with
``parse_float=str``; nothing is evaluated here.

>>> read_answers_text("w1: .1875\\nz1: 0.30\\ndL/dw5: '-0.35*a1'\\n", "a.yaml")
{'w1': '.1875', 'z1': '0.30', 'dL/dw5': '-0.35*a1'}
>>> decimals("0.570"), decimals("12"), decimals("1.5e-3"), decimals("3/16")
(3, 0, 4, None)
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .safetext import CsvError, csv_rows, shorten
from .spec import SpecError, read_data, read_text

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


@dataclass
class Batch:
    """A class CSV: one row of answers per student."""

    ids: list
    columns: list                     # quantity names, in the file's order
    rows: list = field(default_factory=list)   # per student: {name: text}


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
    """A class CSV: an ``id`` column and one column per quantity."""
    reader = _rows(text)
    try:
        header = next(reader)[1]
    except StopIteration:
        raise SpecError("line 1", "the CSV is empty") from None
    header = [h.strip() for h in header]
    if "id" not in header:
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
    id_col = header.index("id")
    columns = [h for h in header if h != "id"]
    batch = Batch([], columns)
    first_line = {}
    for lineno, row in reader:
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise SpecError(f"line {lineno}", f"expected {len(header)} cells, found {len(row)}")
        if len(batch.ids) >= MAX_CSV_ROWS:
            raise SpecError(f"line {lineno}", f"more than {MAX_CSV_ROWS} rows")
        answers = {}
        for h, cell in zip(header, row):
            if h == "id":
                continue
            cell = cell.strip()
            if cell:
                answers[h] = _cell(cell, f"line {lineno}, column {h}")
        sid = row[id_col].strip()
        if not sid:
            raise SpecError(f"line {lineno}", "no id (every row needs the student's id)")
        if sid in first_line:
            raise SpecError(f"line {lineno}", f"id {shorten(sid, 60)!r} appears twice (first on line "
                                              f"{first_line[sid]}); one row per student")
        first_line[sid] = lineno
        batch.ids.append(sid)
        batch.rows.append(answers)
    return batch


def _rows(text: str):
    """csv_rows with its refusal as a SpecError (cells are bounded)."""
    try:
        yield from csv_rows(text)
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
    Only a regular file of bounded size is read (see :func:`derive.spec.read_text`)."""
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
