"""Spec files: a user's network in YAML or JSON, read safely and built into a graph.

YAML goes through a safe loader that also refuses duplicate keys and aliases;
every expression goes through :func:`derive.engine.parse.parse_expr_safe`; sizes are
bounded; every refusal is a :class:`SpecError` whose message names the field.

>>> spec = load_spec_text('''
... inputs: {x: 2}
... targets: {y: 1}
... parameters: {w: 0.5}
... forward: {o: w*x}
... loss: (o - y)**2 / 2
... optimizer: {rule: sgd, lr: 0.1}
... ''', "demo.yaml")
>>> spec.graph.computed, spec.values["w"]
(['o', 'L'], 1/2)
"""
from __future__ import annotations

import json
import os
import stat
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from derive.engine.graph import Graph, GraphError
from derive.engine.optim import Optimizer, OptimizerError
from derive.engine.parse import ExprError, check_name, number, parse_expr_safe
from derive.safetext import visible

MAX_FILE_BYTES = 256 * 1024
MAX_NAMES = 4000
#: digits of one integer in a spec, values or answers file (Python itself stops at 4300)
MAX_INT_DIGITS = 400
#: seconds allowed for building, deriving and checking one user spec
TIME_LIMIT = 20

SECTIONS = ("inputs", "targets", "parameters")
KIND_OF = {"inputs": "input", "targets": "target", "parameters": "parameter"}
KNOWN_KEYS = {"name", "title", "question", "inputs", "targets", "parameters", "forward", "loss",
              "loss_name", "optimizer", "description", "notes"}


class SpecError(ValueError):
    """A refused spec or values file: ``where`` (field or line) and ``what``."""

    def __init__(self, where: str, what: str):
        self.where = where
        self.what = what
        super().__init__(f"{where}: {what}" if where else what)


class _Loader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys and aliases (no YAML bombs)."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.YAMLError(f"line {event.start_mark.line + 1}: YAML aliases are not allowed")
        return super().compose_node(parent, index)

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                dup = key in seen
            except TypeError:
                raise yaml.YAMLError(f"line {key_node.start_mark.line + 1}: a key must be a plain name") from None
            if dup:
                raise yaml.YAMLError(f"line {key_node.start_mark.line + 1}: key {key!r} appears twice")
            seen.add(key)
        return super().construct_mapping(node, deep)


    def construct_undefined(self, node):
        line = node.start_mark.line + 1
        if node.tag == "tag:yaml.org,2002:merge":
            raise yaml.YAMLError(f"line {line}: YAML merge keys (<<) are not allowed")
        tag = node.tag.replace("tag:yaml.org,2002:", "!!")
        raise yaml.YAMLError(f"line {line}: YAML tag {tag[:60]} is not allowed "
                             "(only plain mappings, lists, numbers and text)")


    def construct_yaml_int(self, node):
        _check_digits(node.value, f"line {node.start_mark.line + 1}")
        return super().construct_yaml_int(node)


def _check_digits(text: str, where: str) -> None:
    digits = sum(ch.isdigit() for ch in text)
    if digits > MAX_INT_DIGITS:
        raise SpecError(where, f"an integer of {digits} digits; at most {MAX_INT_DIGITS} are allowed")


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _Loader.construct_mapping)
_Loader.add_constructor("tag:yaml.org,2002:int", _Loader.construct_yaml_int)
_Loader.add_constructor(None, _Loader.construct_undefined)


def read_data(text: str, source: str, limit: int = MAX_FILE_BYTES):
    """Parse YAML or JSON text (by the file name's ending) with the safe rules.
    A leading UTF-8 byte-order mark is allowed in both.  ``limit`` bounds the
    size (a values file of a large problem: the memory limit)."""
    text = text[1:] if text.startswith("\ufeff") else text
    if len(text) > limit or len(text.encode("utf-8", "replace")) > limit:
        raise SpecError("size", f"the file is larger than {_size_words(limit)}")
    if source.endswith(".json"):
        def pairs(items):
            out = {}
            for k, v in items:
                if k in out:
                    raise SpecError(str(k)[:40], "key appears twice")
                out[k] = v
            return out
        def whole(digits):
            _check_digits(digits, f"line {text[:text.find(digits)].count(chr(10)) + 1}")
            return int(digits)

        try:
            return json.loads(text, object_pairs_hook=pairs, parse_int=whole)
        except json.JSONDecodeError as exc:
            raise SpecError(f"line {exc.lineno}", f"invalid JSON: {exc.msg}") from None
        except RecursionError:
            raise SpecError("", "JSON is nested too deeply") from None
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.reader.ReaderError as exc:
        line = text[:exc.position].count("\n") + 1
        char = exc.character if isinstance(exc.character, int) else ord(exc.character[:1] or "\0")
        raise SpecError(f"line {line}", f"invalid YAML: control character #x{char:04x} is not allowed") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f"line {mark.line + 1}" if mark else ""
        raise SpecError(line, f"invalid YAML: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        msg = str(exc)
        if msg.startswith("line "):
            where, _, what = msg.partition(": ")
            raise SpecError(where, what) from None
        raise SpecError("", f"invalid YAML: {msg.splitlines()[0] if msg else 'unreadable'}") from None
    except RecursionError:
        raise SpecError("", "YAML is nested too deeply") from None


def read_file(path, limit: int = MAX_FILE_BYTES):
    """The parsed data of a spec/values file; SpecError if unreadable.
    Only a regular file is opened (a FIFO with no writer would block).
    ``limit`` bounds the size in bytes (values files of large problems: the memory limit)."""
    return read_data(read_text(path, limit), str(path), limit)


def _size_words(limit: int) -> str:
    return f"{limit // (1024 * 1024)} MiB" if limit >= 1024 * 1024 else f"{limit // 1024} KiB"


def read_text(path, limit: int = MAX_FILE_BYTES) -> str:
    """The UTF-8 text of a regular file of at most ``limit`` bytes (a byte-order
    mark allowed); SpecError (no WHERE: the caller names the file) otherwise."""
    try:
        st = os.stat(path)
        if stat.S_ISDIR(st.st_mode):
            raise SpecError("", "is a folder, not a file")
        if not stat.S_ISREG(st.st_mode):
            raise SpecError("", "is not a regular file (a pipe, device or socket)")
        if st.st_size > limit:
            raise SpecError("size", f"the file is larger than {_size_words(limit)}")
        with open(path, "rb") as f:
            data = f.read(limit + 1)
        if len(data) > limit:
            raise SpecError("size", "the file grew while it was read")
        return data.decode("utf-8-sig")
    except FileNotFoundError:
        raise SpecError("", "no such file") from None
    except UnicodeDecodeError as exc:
        raise SpecError("", f"not UTF-8 text (byte {exc.start + 1})") from None
    except OSError as exc:
        raise SpecError("", f"cannot read file ({exc.strerror or type(exc).__name__})") from None


@dataclass
class Spec:
    """A built graph with its given values and its update rule."""

    graph: Graph
    values: dict                      # leaf name -> sympy number
    optimizer: Optimizer
    title: str = ""
    question: str = ""
    raw: dict = field(default_factory=dict)


@contextmanager
def time_limit(seconds: float, where: str, phase: str = "the work on this spec"):
    """Bound the time of symbolic work on user input (see :mod:`derive.budget`)."""
    from derive.budget import limit

    with limit(seconds, phase, where):
        yield


def build_spec(data, source: str = "spec") -> Spec:
    """Build a :class:`Spec` from parsed data; SpecError names what is wrong."""
    if not isinstance(data, dict):
        found = "the file is empty" if data is None else f"found {type(data).__name__}"
        raise SpecError("top level", f"{found}; a spec must be a mapping with inputs, parameters, "
                                     "forward and loss")
    for key in data:
        if key not in KNOWN_KEYS:
            raise SpecError(str(key)[:40], f"unknown field; known: {', '.join(sorted(KNOWN_KEYS))}")
    title, question = title_and_question(data, source)
    graph = Graph(title[:200])
    values: dict = {}
    count = 0
    for section in SECTIONS:
        block = data.get(section) or {}
        if section == "parameters" and not block:
            raise SpecError("parameters", "at least one trainable parameter is needed")
        if not isinstance(block, dict):
            raise SpecError(section, "must be a mapping of names to numbers")
        for name, raw in block.items():
            where = f"{section}.{name}"
            _name(where, name)
            if name in graph.nodes:
                raise SpecError(where, "name defined twice")
            values[name] = _value(where, raw)
            graph.add_leaf(name, KIND_OF[section])
            count += 1
    forward = data.get("forward") or {}
    if not isinstance(forward, dict):
        raise SpecError("forward", "must be a mapping of names to expressions, in order")
    loss_name = data.get("loss_name", "L")
    _name("loss_name", loss_name)
    later = {str(n) for n in forward} | {loss_name}
    for name, text in forward.items():
        where = f"forward.{name}"
        _name(where, name)
        if name in graph.nodes or name == loss_name:
            raise SpecError(where, "name defined twice")
        count += 1
        if count > MAX_NAMES:
            raise SpecError("forward", f"more than {MAX_NAMES} quantities")
        graph.add(name, _expr(where, text, graph, later))
    if "loss" not in data or data["loss"] in (None, ""):
        raise SpecError("loss", "missing: the spec needs a loss expression")
    loss = _expr("loss", data["loss"], graph, later)
    if not loss.free_symbols:
        raise SpecError("loss", "does not depend on any quantity")
    if not _reaches_parameter(graph, loss):
        raise SpecError("loss", "does not depend on any parameter, so there is no gradient to derive")
    graph.add(loss_name, loss, kind="loss")
    try:
        optimizer = Optimizer.from_spec(data.get("optimizer"))
    except OptimizerError as exc:
        where, _, what = str(exc).partition(": ")
        raise SpecError(where, what) from None
    if not optimizer.lr > 0:
        raise SpecError("optimizer.lr", f"the learning rate must be positive, got {optimizer.lr}")
    return Spec(graph, values, optimizer, title[:200], question, data)


def title_and_question(data: dict, source: str) -> tuple:
    """A spec's title and question as text a terminal or TeX may show:
    control characters become visible escapes (:mod:`derive.safetext`)."""
    title = data.get("title") or data.get("name") or Path(source).stem
    if not isinstance(title, str):
        raise SpecError("name", "must be text")
    question = data.get("question") or data.get("description") or ""
    if not isinstance(question, str):
        raise SpecError("question", "must be text")
    return visible(title), visible(question, keep_lines=True)


def load_spec_text(text: str, source: str) -> Spec:
    return build_spec(read_data(text, source), source)


def load_spec(path) -> Spec:
    return build_spec(read_file(path), str(path))


def _name(where, name):
    try:
        check_name(name)
    except ExprError as exc:
        raise SpecError(where, str(exc)) from None


def _reaches_parameter(graph: Graph, expr) -> bool:
    """Whether expr depends, through the forward nodes, on a parameter."""
    needed = set(expr.free_symbols)
    for node in reversed(list(graph.nodes.values())):
        if node.symbol in needed:
            if node.kind == "parameter":
                return True
            if node.expr is not None:
                needed |= node.expr.free_symbols
    return False


def _value(where, raw):
    if isinstance(raw, (list, dict)):
        raise SpecError(where, "vector and matrix values need a shape; see docs/specs.md, vectors")
    try:
        return number(raw)
    except ExprError as exc:
        raise SpecError(where, f"not a numeric value ({exc})") from None


def _expr(where, text, graph: Graph, later=frozenset()):
    names = {n: node.symbol for n, node in graph.nodes.items()}
    try:
        return parse_expr_safe(text, names)
    except ExprError as exc:
        name = getattr(exc, "unknown_name", None)
        if name is not None and name in later:
            itself = where.endswith(f".{name}")
            raise SpecError(where, f"{name!r} is used {'in its own definition' if itself else 'before it is defined'}"
                                   " (a right side may use only names defined above it)") from None
        raise SpecError(where, str(exc)) from None
    except GraphError as exc:
        raise SpecError(where, str(exc)) from None


__all__ = ["Spec", "SpecError", "build_spec", "load_spec", "load_spec_text", "read_data",
           "read_file", "time_limit"]
