"""A parser that holds: every spec in tests/hostile/ is refused with its exact line.

Each file in ``tests/hostile/`` is one hostile or broken spec (code injection
through expressions, names and the YAML itself; resource bombs; malformed
YAML; wrong types; undefined names and cycles; ...).  ``REFUSALS`` maps it to
the one line derive must print after ``derive: error: FILE: ``.  Every run
asserts exit code 2, exactly one stderr line, no traceback, and that ``--out``
neither creates nor replaces a file.  A few large inputs are built in the test
instead of being stored.
"""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from derive.cli import main

HOSTILE = Path(__file__).resolve().parent / "hostile"
ROOT = HOSTILE.parents[1]

#: file -> "WHERE: WHAT" after "derive: error: FILE: "
REFUSALS = {
    'bomb-big-exponent-symbolic.yaml':
        'forward.o: exponent 100000 is larger than 64 in absolute value',
    'bomb-big-power.yaml':
        'forward.o: exponent 10000 is larger than 64 in absolute value',
    'bomb-deep-calls.yaml':
        'forward.o: expression is nested deeper than 40 levels',
    'bomb-deep-nesting.yaml':
        'forward.o: expression is nested deeper than 40 levels',
    'bomb-deep-unary.yaml':
        'forward.o: expression could not be parsed (too deep or malformed)',
    'bomb-exp-tower.yaml':
        'forward.o: value is too large to evaluate (a part of it is about 1.08E+10572)',
    'bomb-huge-float-literal.yaml':
        "forward.o: 'inf' is not a finite number",
    'bomb-huge-literal.yaml':
        'forward.o: integer literal is too large',
    'bomb-huge-value.yaml':
        'inputs.x: not a numeric value (number 99999999999999999999... is too large (more than 30 digits))',
    'bomb-power-tower.yaml':
        'forward.o: exponent 387420489 is larger than 64 in absolute value',
    'bomb-repeated-squaring.yaml':
        'forward.n11: value is too large to evaluate (about 4.31E+360)',
    'bool-value.yaml':
        'inputs.x: not a numeric value (True is not a number)',
    'constant-loss.yaml':
        'loss: does not depend on any quantity',
    'defined-twice-forward.yaml':
        'forward.w: name defined twice',
    'defined-twice-leaves.yaml':
        'parameters.x: name defined twice',
    'defined-twice-loss-name.yaml':
        'forward.E: name defined twice',
    'division-by-zero-literal.yaml':
        'forward.o: division by zero',
    'division-by-zero-value.yaml':
        'forward.o: value is infinite or undefined (zoo; a division by zero?)',
    'empty-loss.yaml':
        'loss: missing: the spec needs a loss expression',
    'expr-attribute.yaml':
        'forward.o: attribute access (.) is not allowed in an expression',
    'expr-bool-op.yaml':
        'forward.o: and/or is not allowed in an expression',
    'expr-call-eval.yaml':
        "forward.o: unknown function 'eval'; known: exp, log, relu, sigmoid, softplus, sqrt, step, tanh",
    'expr-call-open.yaml':
        "forward.o: unknown function 'open'; known: exp, log, relu, sigmoid, softplus, sqrt, step, tanh",
    'expr-class-bases.yaml':
        'forward.o: attribute access (.) is not allowed in an expression',
    'expr-comparison.yaml':
        'forward.o: comparison is not allowed in an expression',
    'expr-complex-literal.yaml':
        'forward.o: constant 2j is not a number',
    'expr-dunder-builtins.yaml':
        "forward.o: name '__builtins__' is not allowed (dunder names are refused)",
    'expr-ellipsis.yaml':
        'forward.o: constant Ellipsis is not a number',
    'expr-empty.yaml':
        'forward.o: expression is empty',
    'expr-fstring.yaml':
        'forward.o: f-string is not allowed in an expression',
    'expr-function-as-value.yaml':
        "forward.o: 'tanh' is an operation and must be called, as tanh(...)",
    'expr-generator.yaml':
        "forward.o: unknown function 'sum'; known: exp, log, relu, sigmoid, softplus, sqrt, step, tanh",
    'expr-import-os.yaml':
        'forward.o: only the operations of the table may be called (no attributes or subscripts)',
    'expr-keyword-arg.yaml':
        'forward.o: tanh() takes exactly one positional argument',
    'expr-lambda.yaml':
        'forward.o: only the operations of the table may be called (no attributes or subscripts)',
    'expr-list-comprehension.yaml':
        'forward.o: list comprehension is not allowed in an expression',
    'expr-matmul.yaml':
        'forward.o: operator @ is not allowed',
    'expr-nul-byte.yaml':
        'line 5: invalid YAML: control character #x0000 is not allowed',
    'expr-starred-arg.yaml':
        'forward.o: tanh() takes exactly one positional argument',
    'expr-statement.yaml':
        'forward.o: syntax error at column 2: invalid syntax',
    'expr-string-constant.yaml':
        "forward.o: constant 'w' is not a number",
    'expr-subscript.yaml':
        'forward.o: subscript ([...]) is not allowed in an expression',
    'expr-walrus.yaml':
        'forward.o: assignment (:=) is not allowed in an expression',
    'expr-xor-as-power.yaml':
        'forward.o: operator ^ (write powers as **) is not allowed',
    'expr-yield.yaml':
        'forward.o: yield is not allowed in an expression',
    'inf-value.yaml':
        'targets.y: not a numeric value (-inf is not a finite number)',
    'log-of-negative.yaml':
        'forward.o: value is not a finite real number (-0.105361 + 3.14159*I)',
    'loss-used-in-forward.yaml':
        "forward.o: 'L' is used before it is defined (a right side may use only names defined above it)",
    'loss-without-parameters.yaml':
        'loss: does not depend on any parameter, so there is no gradient to derive',
    'malformed-binary.yaml':
        'line 2: invalid YAML: control character #x0000 is not allowed',
    'malformed-indent.yaml':
        'line 3: invalid YAML: mapping values are not allowed here',
    'malformed-json-duplicate.json':
        'inputs: key appears twice',
    'malformed-json.json':
        'line 1: invalid JSON: Expecting property name enclosed in double quotes',
    'malformed-tab.yaml':
        "line 2: invalid YAML: found character '\\t' that cannot start any token",
    'malformed-unclosed.yaml':
        "line 2: invalid YAML: expected ',' or '}', but got ':'",
    'missing-loss.yaml':
        'loss: missing: the spec needs a loss expression',
    'missing-optimizer-rule.yaml':
        'optimizer.rule: missing; one of sgd, momentum, nesterov, adagrad, rmsprop, adam',
    'name-dotted.yaml':
        "parameters.os.path: name 'os.path' is not a valid name (letters, digits and _, starting with a letter)",
    'name-dunder.yaml':
        "parameters.__class__: name '__class__' is not a valid name (letters, digits and _, starting with a letter)",
    'name-keyword.yaml':
        "parameters.lambda: name 'lambda' is a Python keyword",
    'name-loss-name-dunder.yaml':
        "loss_name: name '__L' is not a valid name (letters, digits and _, starting with a letter)",
    'name-number.yaml':
        'parameters.7: name 7 is not a valid name (letters, digits and _, starting with a letter)',
    'name-operation.yaml':
        "forward.tanh: name 'tanh' is the name of an operation",
    'name-space.yaml':
        "parameters.my w: name 'my w' is not a valid name (letters, digits and _, starting with a letter)",
    'name-too-long.yaml':
        "parameters.wwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwww: name 'wwwwwwwwwwwwwwwwwwww'... is longer than 64 characters",
    'name-unicode.yaml':
        "parameters.wé: name 'wé' is not a valid name (letters, digits and _, starting with a letter)",
    'nan-value.yaml':
        'inputs.x: not a numeric value (nan is not a finite number)',
    'negative-lr.yaml':
        'optimizer.lr: learning rate must not be negative, got -0.5',
    'no-parameters.yaml':
        'parameters: at least one trainable parameter is needed',
    'non-numeric-value.yaml':
        "inputs.x: not a numeric value ('one' is not a number)",
    'null-value.yaml':
        'parameters.w: not a numeric value (None is not a number)',
    'self-reference.yaml':
        "forward.o: 'o' is used in its own definition (a right side may use only names defined above it)",
    'text-lr.yaml':
        "optimizer.lr: 'fast' is not a number",
    'top-level-empty.yaml':
        'top level: the file is empty; a spec must be a mapping with inputs, parameters, forward and loss',
    'top-level-list.yaml':
        'top level: found list; a spec must be a mapping with inputs, parameters, forward and loss',
    'top-level-scalar.yaml':
        'top level: found str; a spec must be a mapping with inputs, parameters, forward and loss',
    'undefined-name.yaml':
        "forward.o: unknown name 'q'",
    'unknown-field.yaml':
        'layers: unknown field; known: description, forward, inputs, loss, loss_name, name, notes, optimizer, parameters, question, targets, title',
    'unknown-hyper-parameter.yaml':
        'optimizer.betas: unknown hyper-parameter for sgd; known: lr, momentum, dampening, weight_decay, nesterov',
    'unknown-optimizer.yaml':
        "optimizer.rule: unknown optimiser 'adamw'; known: sgd, momentum, nesterov, adagrad, rmsprop, adam",
    'use-before-definition.yaml':
        "forward.a: 'b' is used before it is defined (a right side may use only names defined above it)",
    'wrong-type-forward.yaml':
        'forward: must be a mapping of names to expressions, in order',
    'wrong-type-inputs.yaml':
        'inputs: must be a mapping of names to numbers',
    'wrong-type-loss.yaml':
        'loss: expected an expression, got list',
    'wrong-type-name.yaml':
        'name: must be text',
    'wrong-type-optimizer.yaml':
        'optimizer: must be a mapping such as {rule: sgd, lr: 0.1}',
    'wrong-type-question.yaml':
        'question: must be text',
    'wrong-type-value-list.yaml':
        "inputs.x: vector and matrix values need a shape; see the README's vector specs",
    'yaml-alias-value.yaml':
        'line 2: YAML aliases are not allowed',
    'yaml-billion-laughs.yaml':
        'line 2: YAML aliases are not allowed',
    'yaml-binary-value.yaml':
        "inputs.x: not a numeric value (b'hi' is not a number)",
    'yaml-complex-key.yaml':
        'line 3: a key must be a plain name',
    'yaml-custom-tag.yaml':
        'line 1: YAML tag !shell is not allowed (only plain mappings, lists, numbers and text)',
    'yaml-duplicate-key.yaml':
        "line 3: key 'parameters' appears twice",
    'yaml-duplicate-name.yaml':
        "line 4: key 'w' appears twice",
    'yaml-merge-key.yaml':
        'line 3: YAML merge keys (<<) are not allowed',
    'yaml-python-module.yaml':
        'line 1: YAML tag !!python/module:os is not allowed (only plain mappings, lists, numbers and text)',
    'yaml-python-name.yaml':
        'line 1: YAML tag !!python/name:os.system is not allowed (only plain mappings, lists, numbers and text)',
    'yaml-python-object-apply.yaml':
        'line 2: YAML tag !!python/object/apply:os.system is not allowed (only plain mappings, lists, numbers and text)',
    'yaml-timestamp-value.yaml':
        'inputs.x: not a numeric value (datetime.date(2001, 12, 14) is not a number)',
    'zero-lr.yaml':
        'optimizer.lr: the learning rate must be positive, got 0',
    'zero-to-negative-power.yaml':
        'forward.o: zero raised to a negative power',
}


def run_cli(capsys, argv):
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_refused(capsys, argv, path, expected):
    code, out, err = run_cli(capsys, argv)
    assert code == 2, (argv, out, err)
    assert err.count("\n") == 1 and err.endswith("\n"), err
    assert "Traceback" not in err
    assert err == f"derive: error: {path}: {expected}\n"
    assert out == ""


def test_corpus_and_table_agree():
    files = sorted(p.name for p in HOSTILE.iterdir())
    assert files == sorted(REFUSALS)
    assert len(files) >= 100


@pytest.mark.parametrize("name", sorted(REFUSALS))
def test_refusal(name, capsys, tmp_path):
    path = HOSTILE / name
    assert_refused(capsys, ["solve", str(path)], path, REFUSALS[name])
    # --out: an existing file is left alone, a new one never appears
    existing = tmp_path / "existing.json"
    existing.write_text("KEEP")
    assert_refused(capsys, ["solve", str(path), "--format", "json", "--out", str(existing)], path,
                   REFUSALS[name])
    assert existing.read_text() == "KEEP"
    fresh = tmp_path / "fresh.txt"
    assert_refused(capsys, ["solve", str(path), "--out", str(fresh)], path, REFUSALS[name])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["existing.json"]


@pytest.mark.parametrize("name", ["expr-import-os.yaml", "yaml-python-object-apply.yaml",
                                  "bomb-exp-tower.yaml", "top-level-list.yaml", "malformed-binary.yaml"])
def test_refusal_in_a_real_process(name, tmp_path):
    path = HOSTILE / name
    out = tmp_path / "out.json"
    proc = subprocess.run([sys.executable, "-m", "derive", "solve", str(path), "--format", "json",
                           "--out", str(out)], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr == f"derive: error: {path}: {REFUSALS[name]}\n"
    assert proc.stdout == "" and not out.exists()


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


HEAD = "inputs: {x: 1}\ntargets: {y: 0.5}\nparameters: {w: 0.1}\n"


def test_100k_character_expression(tmp_path, capsys):
    path = write(tmp_path, "long.yaml", HEAD + "forward: {o: " + "w+" * 50_000 + "w}\nloss: o**2\n")
    assert_refused(capsys, ["solve", str(path)], path, "forward.o: expression is longer than 4000 characters")


def test_too_many_nodes(tmp_path, capsys):
    lines = ["  n0: w*x"] + [f"  n{k}: n{k - 1} + 1" for k in range(1, 4200)]
    path = write(tmp_path, "many.yaml", HEAD + "forward:\n" + "\n".join(lines) + "\nloss: n4199**2\n")
    assert_refused(capsys, ["solve", str(path)], path, "forward: more than 4000 quantities")


def test_many_parts_in_one_expression(tmp_path, capsys):
    path = write(tmp_path, "parts.yaml", HEAD + "forward: {o: " + "+".join(["w*x"] * 700) + "}\nloss: o**2\n")
    assert_refused(capsys, ["solve", str(path)], path, "forward.o: expression has more than 800 parts")


def test_oversized_file(tmp_path, capsys):
    path = write(tmp_path, "big.yaml", HEAD + "forward: {o: w*x}\nloss: o**2\n" + "# padding\n" * 30_000)
    assert_refused(capsys, ["solve", str(path)], path, "size: the file is larger than 256 KiB")


def test_growing_exact_values_stay_bounded(tmp_path, capsys):
    # 0.1 squared 40 times is exactly 1/10**(2**39): kept exact it would never
    # finish; past 256 bits derive carries it as a 30-digit float.
    lines = ["  n0: w*x"] + [f"  n{k}: n{k - 1}*n{k - 1}" for k in range(1, 40)]
    path = write(tmp_path, "squares.yaml", HEAD + "forward:\n" + "\n".join(lines) + "\nloss: n39 + w**2\n")
    start = time.monotonic()
    code, out, err = run_cli(capsys, ["solve", str(path), "--format", "json"])
    assert code == 0 and err == ""
    assert time.monotonic() - start < 30


def test_values_file_refusals(tmp_path, capsys):
    spec = HOSTILE.parent.parent / "derive" / "problems" / "specs" / "mlp-relu-regression.yaml"
    cases = {
        "tag.yaml": ("w1: !!python/object/apply:os.system [echo hi]\n",
                     "line 1: YAML tag !!python/object/apply:os.system is not allowed "
                     "(only plain mappings, lists, numbers and text)"),
        "unknown.yaml": ("w9: 1\n", None),
        "text.yaml": ("w1: abc\n", "values.w1: 'abc' is not a number"),
        "list.yaml": ("- 1\n", "a values file must be a mapping of names to numbers or lists"),
    }
    for name, (text, expected) in cases.items():
        path = write(tmp_path, name, text)
        code, out, err = run_cli(capsys, ["solve", str(spec), "--values", str(path)])
        assert code == 2 and out == "" and err.count("\n") == 1, (name, err)
        assert err.startswith(f"derive: error: {path}: "), err
        if expected:
            assert err == f"derive: error: {path}: {expected}\n"
    code, _, err = run_cli(capsys, ["solve", "mlp-relu-regression", "--set", "w1=__import__('os')"])
    assert code == 2 and err.startswith("derive: error: --set w1: ") and err.count("\n") == 1
