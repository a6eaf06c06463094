"""Property-based fuzzing of spec loading and solving (hypothesis).

Random text, textual mutations of the two shipped MLP specs and structural
mutations of their data go through the CLI in-process (`derive solve FILE`).
Whatever the input, derive either solves it (exit 0, output on stdout) or
refuses it with exactly one line `derive: error: FILE: ...` (exit 2), never a
traceback, within the time bound.  The same for small vector specs (shapes,
``@``, time steps): textual and structural mutations.  Examples per run:
60 + 150 + 150 + 60 + 60 = 480, then 120 hand answers and 80 command lines
(issue 16): any answer gets a verdict in bounded time, any command line exits
0, 1 or 2 with one error line.
"""
from __future__ import annotations

import contextlib
import io
import tempfile
import time
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from derive.cli import main

SPECS = Path(__file__).resolve().parents[1] / "derive" / "problems" / "specs"
VALID = {name: (SPECS / f"{name}.yaml").read_text() for name in ("mlp-relu-regression", "mlp-tanh-sigmoid")}
#: seconds one example may take (a user spec's symbolic work is bounded at 20-60 s;
#: these small inputs must stay far below)
TIME_BOUND = 20.0
FUZZ = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

_WORKDIR = tempfile.TemporaryDirectory(prefix="derive-fuzz-")

#: fragments that tend to break parsers, loaders and evaluators
TOKENS = ["__", "__import__('os')", "(", ")", "((((", "**", "9**9**9", "2**10000", "&a ", "*a", "<<: ",
          "!!python/object/apply:os.system [x]", "!!str ", ":", ": ", "\n", "\n  ", "\t", "{", "}", "[", "]",
          "'", '"', "lambda: 0", ".", ".real", "[0]", "tanh(", "relu(", "sigmoid", "log(", "sqrt(", "exp(",
          "0", "-", "1e999", "1e-999", ".nan", ".inf", "null", "true", "~", "#", "---", "...", "%", "@", "^",
          "x1", "w1", "o1", "L", "y", "loss", "forward", "optimizer", "rule", "lr", "/0", "/(x1-x1)", "\x00",
          "é", "9" * 50, ",", ";", "=", "if", "yield", "f'{w1}'", "(q := 1)", "*args"]


def run_solve(text: str, suffix: str = ".yaml", fmt: str = "json"):
    path = Path(_WORKDIR.name) / f"fuzz{suffix}"
    path.write_bytes(text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text)
    out, err = io.StringIO(), io.StringIO()
    start = time.monotonic()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["solve", str(path), "--format", fmt])
    elapsed = time.monotonic() - start
    return path, code, out.getvalue(), err.getvalue(), elapsed


def assert_solves_or_refuses(text: str, suffix: str = ".yaml", fmt: str = "json"):
    path, code, out, err, elapsed = run_solve(text, suffix, fmt)
    assert elapsed < TIME_BOUND, f"took {elapsed:.1f}s"
    if code == 0:
        assert out and err == ""
    else:
        assert code == 2, (code, err)
        assert out == ""
        assert err.endswith("\n") and err.count("\n") == 1, err
        assert err.startswith(f"derive: error: {path}: "), err
        assert "Traceback" not in err


@settings(FUZZ, max_examples=60)
@given(st.text(max_size=400), st.sampled_from([".yaml", ".json"]))
def test_random_text(text, suffix):
    assert_solves_or_refuses(text.replace("\x00", "\ufffd") if suffix == ".json" else text, suffix)


@st.composite
def mutated_text(draw):
    text = VALID[draw(st.sampled_from(sorted(VALID)))]
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["insert", "delete", "replace", "duplicate-line", "drop-line"]))
        i = draw(st.integers(0, len(text)))
        if kind == "insert":
            text = text[:i] + draw(st.sampled_from(TOKENS) | st.text(max_size=8)) + text[i:]
        elif kind == "delete":
            text = text[:i] + text[i + draw(st.integers(1, 20)):]
        elif kind == "replace":
            text = text[:i] + draw(st.sampled_from(TOKENS)) + text[i + draw(st.integers(1, 6)):]
        else:
            lines = text.split("\n")
            k = draw(st.integers(0, len(lines) - 1))
            lines[k:k + 1] = [lines[k], lines[k]] if kind == "duplicate-line" else []
            text = "\n".join(lines)
    return text


@settings(FUZZ, max_examples=150)
@given(mutated_text(), st.sampled_from(["json", "text"]))
def test_mutated_spec_text(text, fmt):
    assert_solves_or_refuses(text, ".yaml", fmt)


LEAF_VALUES = st.one_of(
    st.integers(-10**40, 10**40), st.floats(allow_nan=True, allow_infinity=True), st.booleans(), st.none(),
    st.sampled_from(TOKENS), st.text(max_size=20), st.lists(st.integers(-3, 3), max_size=3),
    st.dictionaries(st.sampled_from(["a", "x1", "w1", "__x"]), st.integers(-3, 3), max_size=2),
    st.sampled_from(["w1*x1", "tanh(w1) + o1", "relu(x1 - 1)", "sigmoid(y)", "log(x1)", "sqrt(-1)",
                     "x1/(w1 - w1)", "exp(exp(exp(9)))", "o1**64", "w1**-64", "softplus(1000)", "0.1 + 0.2"]),
)


NAMES = ["x1", "x2", "y", "w1", "w2", "w5", "b1", "z1", "a1", "o1", "w1_11", "w2_12", "h1", "u", "o"]
EXPRESSIONS = st.builds(
    lambda f, a, op, b: f"{f}({a} {op} {b})" if f else f"{a} {op} {b}",
    st.sampled_from(["", "tanh", "sigmoid", "relu", "exp", "log", "sqrt", "softplus", "step"]),
    st.sampled_from(NAMES + ["0", "1", "0.5", "-2"]), st.sampled_from(["+", "-", "*", "/", "**"]),
    st.sampled_from(NAMES + ["0", "1", "0.5", "2", "3"]))
#: values a user might really write: mostly solvable, sometimes at an edge
PLAUSIBLE_NUMBER = st.one_of(st.floats(-5, 5, allow_nan=False).map(lambda v: round(v, 3)),
                             st.integers(-5, 5), st.floats(-1e6, 1e6, allow_nan=False))
PLAUSIBLE = st.one_of(PLAUSIBLE_NUMBER, EXPRESSIONS, EXPRESSIONS)


def _paths(data, prefix=()):
    if isinstance(data, dict):
        for k, v in data.items():
            yield prefix + (k,)
            yield from _paths(v, prefix + (k,))


@st.composite
def mutated_data(draw):
    data = yaml.safe_load(VALID[draw(st.sampled_from(sorted(VALID)))])
    for _ in range(draw(st.integers(1, 3))):
        paths = list(_paths(data))
        path = draw(st.sampled_from(paths))
        parent = data
        for k in path[:-1]:
            parent = parent[k]
        kind = draw(st.sampled_from(["set-plausible", "set-plausible", "set-plausible", "set", "delete",
                                     "add", "rename"]))
        inner = [p for p in paths if len(p) == 2 and isinstance(data.get(p[0]), dict)]
        if kind == "set-plausible" and inner:
            section, name = draw(st.sampled_from(inner))
            numbers = section in ("inputs", "targets", "parameters", "optimizer")
            data[section][name] = draw(PLAUSIBLE_NUMBER if numbers else PLAUSIBLE)
        elif kind.startswith("set"):
            parent[path[-1]] = draw(LEAF_VALUES)
        elif kind == "delete":
            del parent[path[-1]]
        elif kind == "add":
            parent[draw(st.sampled_from(["x3", "w7", "z1", "__x", "loss", "o1", "lr", "rule", "L", "1x", "tanh"]))] = \
                draw(LEAF_VALUES)
        else:
            parent[draw(st.sampled_from(["x1", "w1", "q", "o1", "a b", "inputs", "forward"]))] = parent.pop(path[-1])
        if not isinstance(data, dict) or not data:
            break
    return data


@settings(FUZZ, max_examples=150)
@given(mutated_data(), st.booleans())
def test_mutated_spec_data(data, as_json):
    import json

    if as_json:
        text = json.dumps(data, allow_nan=True)
    else:
        text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    assert_solves_or_refuses(text, ".json" if as_json else ".yaml")


# -- vector specs: shapes, @, time steps -------------------------------------------

#: small vector specs (sizes 2, T = 2) so that one example solves in well under a second
VECTOR = {
    "rnn": """\
parameters:
  U: {shape: [2, 2], value: [[0.2, -0.3], [-0.2, 0]]}
  W: {shape: [2, 2], value: [[-0.4, 0.2], [0, -0.4]]}
  v: {shape: [2], value: [0.5, -0.25]}
inputs:
  I: {shape: [T, 2], value: [[0.25, 0.75], [0.75, -0.75]]}
  H0: {shape: [2], value: 0.25}
targets:
  Y: {shape: [T], value: [0.5, -0.5]}
unroll:
  T: 2
  initial: {H: H0}
  equations:
    H: tanh(U @ I[t] + W @ H[t-1])
    o: v @ H
forward:
  p: softmax(o)
loss: sum((o - Y)**2) / 2 + mean(p * o)
optimizer: {rule: sgd, lr: 0.1}
""",
    "gate": """\
parameters:
  W: {shape: [2, 4], value: [[0.1, -0.2, 0.3, 0.1], [0.2, 0.1, -0.1, 0.2]]}
  b: {shape: [2], value: 0}
inputs:
  x: {shape: [2], value: [0.5, -1]}
  h_prev: {shape: [2], value: [0.25, -0.5]}
targets:
  y: {shape: [2], value: [0.5, 0]}
forward:
  z: sigmoid(W @ stack(h_prev, x) + b)
  h: z * h_prev + (1 - z) * tanh(W @ transpose(W) @ z)
loss: sum((h - y)**2) / 2
""",
}
VECTOR_TOKENS = TOKENS + ["@", " @ ", "[t]", "[t-1]", "[t+1]", "[T]", "[0]", "[99]", "T", "t", "shape", "value",
                          "[100000, 100000]", "[T, 2]", "[2, 2, 2]", "stack(", "softmax(", "transpose(", "sum(",
                          "mean(", "unroll", "initial", "equations", "64", "65", "-1", "H[t-1]", "W @ W"]


@st.composite
def mutated_vector_text(draw):
    text = VECTOR[draw(st.sampled_from(sorted(VECTOR)))]
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["insert", "delete", "replace", "duplicate-line", "drop-line"]))
        i = draw(st.integers(0, len(text)))
        if kind == "insert":
            text = text[:i] + draw(st.sampled_from(VECTOR_TOKENS)) + text[i:]
        elif kind == "delete":
            text = text[:i] + text[i + draw(st.integers(1, 12)):]
        elif kind == "replace":
            text = text[:i] + draw(st.sampled_from(VECTOR_TOKENS)) + text[i + draw(st.integers(1, 6)):]
        else:
            lines = text.split("\n")
            k = draw(st.integers(0, len(lines) - 1))
            lines[k:k + 1] = [lines[k], lines[k]] if kind == "duplicate-line" else []
            text = "\n".join(lines)
    return text


@settings(FUZZ, max_examples=60)
@given(mutated_vector_text())
def test_mutated_vector_spec_text(text):
    assert_solves_or_refuses(text, ".yaml", "json")


VECTOR_EXPRESSIONS = st.builds(
    lambda f, a, op, b: f"{f}({a} {op} {b})" if f else f"{a} {op} {b}",
    st.sampled_from(["", "tanh", "sigmoid", "relu", "exp", "softmax", "sum", "mean", "transpose", "stack"]),
    st.sampled_from(["U", "W", "v", "b", "x", "h_prev", "H", "H[t-1]", "H[t]", "I[t]", "I[T]", "Y[1]", "o",
                     "z", "1", "0.5", "stack(x, h_prev)"]),
    st.sampled_from(["+", "-", "*", "/", "**", "@"]),
    st.sampled_from(["U", "W", "v", "b", "x", "H", "H[t-1]", "I[t]", "o", "z", "2", "0.5"]))
SHAPES = st.one_of(st.lists(st.integers(-1, 5), max_size=3), st.just(["T", 2]), st.just([10**6, 10**6]),
                   st.just([]), st.sampled_from(["T", 2, None, [True]]))


@st.composite
def mutated_vector_data(draw):
    data = yaml.safe_load(VECTOR[draw(st.sampled_from(sorted(VECTOR)))])
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["fill", "fill", "expression", "expression", "shape", "value", "T",
                                     "initial", "delete"]))
        leaves = [(s, n) for s in ("parameters", "inputs", "targets") for n in (data.get(s) or {})]
        exprs = [("forward", n) for n in (data.get("forward") or {})]
        if "unroll" in data:
            exprs += [("unroll", n) for n in data["unroll"]["equations"]]
        if kind == "fill" and leaves:     # a plausible edit: new numbers, same shape
            section, name = draw(st.sampled_from(leaves))
            if isinstance(data[section][name], dict):
                data[section][name]["value"] = draw(PLAUSIBLE_NUMBER)
        elif kind == "expression" and exprs:
            section, name = draw(st.sampled_from(exprs))
            block = data["unroll"]["equations"] if section == "unroll" else data["forward"]
            block[name] = draw(VECTOR_EXPRESSIONS)
        elif kind == "shape" and leaves:
            section, name = draw(st.sampled_from(leaves))
            if isinstance(data[section][name], dict):
                data[section][name]["shape"] = draw(SHAPES)
        elif kind == "value" and leaves:
            section, name = draw(st.sampled_from(leaves))
            data[section][name] = {"shape": draw(SHAPES), "value": draw(LEAF_VALUES)} if draw(st.booleans()) \
                else draw(LEAF_VALUES)
        elif kind == "T" and "unroll" in data:
            data["unroll"]["T"] = draw(st.one_of(st.integers(-2, 70), LEAF_VALUES))
        elif kind == "initial" and "unroll" in data:
            data["unroll"]["initial"] = draw(st.one_of(
                st.dictionaries(st.sampled_from(["H", "o", "q"]), VECTOR_EXPRESSIONS, max_size=2), LEAF_VALUES))
        elif kind == "delete":
            section = draw(st.sampled_from(sorted(data)))
            del data[section]
    return data


@settings(FUZZ, max_examples=60)
@given(mutated_vector_data())
def test_mutated_vector_spec_data(data):
    assert_solves_or_refuses(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), ".yaml")


# -- hand answers and the whole command line (issue 16) ------------------------------

#: fragments of hostile answers: towers, overflow, control characters, TeX primitives
ANSWER_TOKENS = TOKENS + ["**64", "9**64", "(", ")**64", "exp(", "exp(1000)", "e^{", "^{64}", "$", "\\frac{",
                          "\\input{x}", "\\write18", "^^5c", "\\left(", "\\right)", "a_1", "o_1", "a1", "o1",
                          "theta_t", "eta", "g", "\x1b[31m", "\x1b]0;x\x07", "\u202e", "\x7f", "\x9b", "sum_{k=1..",
                          "dE_3/dW", "dE/dW", "}", "1e308", "-", "0.1875", "−", "×", "½", "٣"]
ANSWER_TEXT = st.one_of(st.text(max_size=200),
                        st.lists(st.sampled_from(ANSWER_TOKENS), max_size=30).map("".join))
#: seconds one answer may take in-process: its own limit (2 s, set below) and slack
ANSWER_BOUND = 6.0
_CONTROL = __import__("re").compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_SOLVED: dict = {}


def _solution(target):
    from derive.problems import load

    if target not in _SOLVED:
        _SOLVED[target] = load(target).solve()
    return _SOLVED[target]


@settings(FUZZ, max_examples=120)
@given(ANSWER_TEXT, st.sampled_from([("mlp-relu-regression", "dL/dw5"), ("mlp-relu-regression", "w1"),
                                     ("optimizers", "sgd_update"), ("rnn-bptt", "dE/dW")]))
def test_answer_reader_gives_a_verdict_in_bounded_time(text, where):
    """Any answer text: a verdict from the contract's list, within the bound,
    and a table without control characters."""
    import os

    from derive.grading.verdicts import VERDICTS, check
    from derive.commands.check import bound_messages, render_text

    target, name = where
    os.environ["DERIVE_ANSWER_TIME_LIMIT"] = "2"
    try:
        start = time.monotonic()
        result = check(_solution(target), {name: text})
        elapsed = time.monotonic() - start
    finally:
        del os.environ["DERIVE_ANSWER_TIME_LIMIT"]
    assert elapsed < ANSWER_BOUND, f"took {elapsed:.1f} s"
    assert all(it["verdict"] in VERDICTS for it in result["items"])
    shown = render_text(bound_messages(result))
    assert not _CONTROL.search(shown) and len(shown) < 20_000


ARGUMENTS = st.one_of(
    st.sampled_from(["solve", "check", "codegen", "variants", "list", "key", "--format", "json", "text", "tex",
                     "--out", "--values", "--set", "--steps", "--count", "--seed", "--rtol", "--atol", "--roster",
                     "--jobs", "--only", "--no-pdf", "mlp-relu-regression", "optimizers", "answers.yaml",
                     "answers.csv", "spec.yaml", "folder", "file", "file/below", "/proc/x", "w1=0.1", "W=[[1]]",
                     "100000000", "-1", "0", "1e999", "nan", "=", "\x1b[2J", "q" * 300]),
    st.text(max_size=30))


@settings(FUZZ, max_examples=80)
@given(st.lists(ARGUMENTS, min_size=1, max_size=7))
def test_any_command_line_exits_0_1_or_2_with_one_error_line(argv):
    """Random command lines over a small sandbox (a spec, answers, a CSV, a
    folder and a file in the way): exit 0, 1 or 2 only; on 2 one stderr
    line; never a traceback or a control character; within the bound.
    PDFs are not built (--no-pdf is added to key and variants, pdf is not a
    format offered) to keep each example short."""
    import os

    base = Path(_WORKDIR.name) / "cli"
    if not base.exists():
        base.mkdir()
        (base / "spec.yaml").write_text(VALID["mlp-relu-regression"])
        (base / "answers.yaml").write_text("w1: 0.1875\ndL/dw5: a1*(o1 - y)\n")
        (base / "answers.csv").write_text("id,w1\nann,0.1875\nbob,=1+1\n")
        (base / "folder").mkdir()
        (base / "file").write_text("KEEP")
    if argv[0] in ("key", "variants"):
        argv = argv + ["--no-pdf", "--out", "folder/out"]
    if argv[0] == "variants":
        argv = argv + ["--jobs", "1"]
    out, err = io.StringIO(), io.StringIO()
    cwd = os.getcwd()
    os.chdir(base)
    start = time.monotonic()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(argv)
    finally:
        os.chdir(cwd)
    elapsed = time.monotonic() - start
    assert elapsed < TIME_BOUND, f"took {elapsed:.1f} s"
    assert code in (0, 1, 2)
    e = err.getvalue()
    assert "Traceback" not in e and not _CONTROL.search(e) and not _CONTROL.search(out.getvalue())
    if code == 2:
        assert e.startswith("derive: error: ") and e.count("\n") == 1, e
    assert (base / "file").read_text() == "KEEP"


_SYMBOLS = {n: __import__("sympy").Symbol(n, real=True) for n in ("a1", "o1", "y", "w1", "x", "theta_t", "g")}


@settings(FUZZ, max_examples=300)
@given(st.one_of(ANSWER_TEXT, st.lists(st.sampled_from(["(", ")", "**", "64", "9", "*", "+", "-", "/", "a1", "x",
                                                       "exp(", "tanh(", "0.5", "1e300", "2"]), max_size=40).map("".join)))
def test_expression_parser_builds_or_refuses_with_one_reason(text):
    """The one parser behind specs and answers: any text gives an expression
    or an ExprError (never another exception), quickly."""
    from derive.engine.parse import ExprError, parse_expr_safe

    start = time.monotonic()
    try:
        parse_expr_safe(text, _SYMBOLS)
    except ExprError as exc:
        assert str(exc) and "\n" not in str(exc)
    assert time.monotonic() - start < 2.0
