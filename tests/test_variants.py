"""derive variants: the drawing rules over many seeds, the files, reproducibility,
the roster, and derive check against each student's own variant.

The rules are checked on the *exact* forward pass and gradients of the symbolic
engine, not on the numpy pass that :mod:`derive.document.variants` uses to accept a draw.
"""
import csv
import io
import itertools
import os
import re
import shutil
from pathlib import Path

import pytest
import sympy
import yaml

from derive import cli
from derive.engine.backprop import evaluate
from derive.engine.ops import relu, sigmoid, softplus, step
from derive.problems import builtins, load
from derive.document.render import solution_document
from derive.commands.variants import Progress
from derive.document.render import render_blocks
from derive.document.variants import (RULES, _worked_blocks, answers_of, assign, base_of, describe, draw_variants,
                             is_gradient_problem, unit_pattern, yaml_text)

GRADIENT_BUILTINS = [p.id for p in builtins() if is_gradient_problem(p)]
#: seeds per built-in in the rule test (fewer for the large graphs)
SEEDS = 200
#: exact values at a rule's bound pass; a 30-digit float may sit that far off it
SLACK = sympy.Float("1e-25", 30)
needs_tex = pytest.mark.skipif(shutil.which("pdflatex") is None, reason="no pdflatex (install.sh installs it)")

SPEC = """\
title: Softplus and sigmoid, a user's spec
question: A unit with a softplus, then a sigmoid output; squared error.
inputs: {x1: 0.5, x2: -0.3}
targets: {y: 1}
parameters: {w1: 0.4, w2: -0.6, b: 0.1, v: 0.8}
forward:
  z: w1*x1 + w2*x2 + b
  h: softplus(z)
  o: sigmoid(v*h)
loss: (o - y)**2 / 2
optimizer: {rule: sgd, lr: 0.1}
"""


def run_cli(argv, capsys):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


# -- the rules, checked independently -------------------------------------------------------------

def _applications(graph, forward):
    """(kind, exact argument) of every activation application, from the exact forward values."""
    subs = {graph.nodes[n].symbol: v for n, v in forward.items()}
    kinds = {relu: "relu", step: "relu", sigmoid: "saturating", sympy.tanh: "saturating",
             softplus: "saturating", sympy.exp: "exp", sympy.log: "log"}
    for n in graph.computed:
        for sub in sympy.preorder_traversal(graph.nodes[n].expr):
            if type(sub) in kinds:
                x = sub.args[0].xreplace(subs)
                yield kinds[type(sub)], x if x.is_Rational else sympy.N(x, 30)


def _derivation(problem):
    """The problem's recorded derivation (a vector built-in keeps it on its solution)."""
    return problem.derivation if hasattr(problem, "spec") else problem.solve().derivation


def _size(pid) -> int:
    return len(base_of(load(pid))[0].nodes)


def _given_relu_signs(problem):
    """The sign of every relu argument at the problem's own values (exactly, in order)."""
    g, given = base_of(problem)
    return [x >= 0 for kind, x in _applications(g, g.forward(given)) if kind == "relu"]


def _check_rules(problem, values, derivation=None, all_active=False):
    g, given = base_of(problem)
    tenths = {k: v * 10 for k, v in values.items()}
    assert all(t.is_Integer for t in tenths.values()), values            # multiples of 0.1
    for name, v in values.items():
        kind = g.nodes[name].kind
        if kind == "parameter" and re.fullmatch(r"(b|bias)(\d+|_\w+)?", name):
            assert abs(v) <= sympy.Rational(1, 2)
        else:
            assert abs(v) <= 1
        if kind == "parameter" and not name.startswith("b"):
            assert v != 0
    inputs = [n for n in g.of_kind("input") if values[n] != 0]
    assert len({values[n] for n in inputs}) == len(inputs)                # no two inputs equal
    for n in g.of_kind("input"):
        if given[n] != 0:
            assert values[n] != 0
    for n in g.of_kind("target"):         # judged on the whole vector/matrix a target belongs to
        group = next((grp.names for grp in g.groups.values() if n in grp.names), (n,))
        if all(given[m] in (0, 1) for m in group):
            assert values[n] in (0, 1)                                     # a label stays a label
            if len(group) > 1 and sum(given[m] for m in group) == 1:
                assert sum(values[m] for m in group) == 1                  # one-hot stays one-hot
        elif all(0 <= given[m] <= 1 for m in group):
            assert 0 <= values[n] <= 1
    forward = g.forward(values)
    alive = iter(_given_relu_signs(problem))
    dead_kept = False
    for kind, x in _applications(g, forward):
        if kind == "relu":
            if next(alive) or all_active:
                assert x - sympy.Rational(1, 20) >= -SLACK               # active, away from the kink
            else:
                assert x + sympy.Rational(1, 20) <= SLACK                # the problem's dead unit, kept dead
                dead_kept = True
        elif kind == "saturating":
            assert abs(x) - sympy.Rational(5, 2) <= SLACK                # no saturation
        elif kind == "exp":
            assert abs(x) <= 5
        elif kind == "log":
            assert x >= sympy.Rational(1, 20)
    assert forward[g.loss] >= sympy.Rational(1, 100)                     # a loss worth computing
    derivation = derivation or _derivation(problem)
    adjoint = evaluate(derivation, forward).adjoint
    asked = g.parameters + list(g.wrt_inputs)
    grads = {p: float(adjoint.get(p, 0)) for p in asked if p in derivation.by_node}
    zero = unit_pattern(problem, all_active).zero
    assert bool(zero) == dead_kept
    for p in zero:
        assert grads.pop(p) == 0                                           # what the dead unit teaches
    assert grads and all(abs(x) >= 1e-3 for x in grads.values())         # not negligible
    for a, b in itertools.combinations(grads.values(), 2):
        assert abs(a - b) >= 1e-6                                          # no two equal


@pytest.mark.parametrize("pid", GRADIENT_BUILTINS)
def test_rules_hold_over_many_seeds(pid):
    problem = load(pid)
    derivation = _derivation(problem)
    seeds = SEEDS if _size(pid) <= 200 else 40
    for seed in range(seeds):
        v = draw_variants(problem, 1, seed)[0]
        _check_rules(problem, v.values, derivation)


def test_rules_hold_for_a_spec_file(tmp_path):
    path = tmp_path / "unit.yaml"
    path.write_text(SPEC)
    problem = load(str(path))
    for seed in range(SEEDS):
        _check_rules(problem, draw_variants(problem, 1, seed)[0].values)


def test_the_seed_points_break_the_rules_that_variants_avoid():
    # the exam's relu net has x1 = x2 (equal inputs give w1, w2 equal gradients): never drawn
    p = load("mlp-relu-regression")
    with pytest.raises(AssertionError):
        _check_rules(p, dict(p.spec.values))


def test_the_relu_net_keeps_its_dead_unit_unless_told_otherwise():
    """The exam's point: z2 < 0, so h2 is dead and dL/dw3 = dL/dw4 = dL/db2 = dL/dw6 = 0.
    Every variant keeps that (z1 >= 0.05, z2 <= -0.05), with a loss and the other
    gradients large enough to compute by hand; --all-active gives two live units."""
    p = load("mlp-relu-regression")
    derivation = _derivation(p)
    assert sorted(unit_pattern(p).zero) == ["b2", "w3", "w4", "w6"]
    for seed in range(SEEDS):
        v = draw_variants(p, 1, seed)[0]
        _check_rules(p, v.values, derivation)
        f = p.graph.forward(v.values)
        assert f["z1"] >= sympy.Rational(1, 20) and f["z2"] <= -sympy.Rational(1, 20)
        assert f["L"] >= sympy.Rational(1, 100)
        a = draw_variants(p, 1, seed, all_active=True)[0]
        _check_rules(p, a.values, derivation, all_active=True)
        fa = p.graph.forward(a.values)
        assert min(fa["z1"], fa["z2"]) >= sympy.Rational(1, 20)


def _tanh_classifier():
    """A graph with a one-hot target vector and a zero initial state, as a
    duck-typed problem (a graph and its given values)."""
    from types import SimpleNamespace

    from derive.engine.tensor import TensorGraph, apply, total

    tg = TensorGraph("classifier")
    W = tg.parameter("W", (3, 2))
    x = tg.input("x", (2,))
    h0 = tg.input("h0", (3,))
    y = tg.target("y", (3,))
    z = tg.define("z", apply("tanh", W @ x + h0))
    tg.loss("L", total((z - y) * (z - y)) / 2)
    given = {n: sympy.Integer(0) for n in tg.graph.leaves}
    given.update({"W_1_1": 1, "x_1": 1, "x_2": 1, "y_2": 1})
    return SimpleNamespace(id="classifier", graph=tg.graph, spec=SimpleNamespace(values=given))


def test_one_hot_targets_stay_one_hot_and_zero_states_stay_zero():
    p = _tanh_classifier()
    hot = set()
    for v in draw_variants(p, 30, seed=5):
        ys = [v.values[f"y_{i}"] for i in (1, 2, 3)]
        assert sorted(ys) == [0, 0, 1]
        hot.add(ys.index(1))
        assert all(v.values[f"h0_{i}"] == 0 for i in (1, 2, 3))
        assert all(v.values[f"W_{i}_{j}"] != 0 for i in (1, 2, 3) for j in (1, 2))
    assert hot == {0, 1, 2}
    assert "y: one-hot (the position of the 1 drawn)" in describe(p)
    assert "h0: 0 (given as zero)" in describe(p)
    nested = draw_variants(p, 1, seed=5)[0].plain_values(p.graph)
    assert len(nested["W"]) == 3 and all(len(row) == 2 for row in nested["W"])


def test_draws_are_reproducible_and_do_not_depend_on_count():
    p = load("mlp-relu-regression")
    a = draw_variants(p, 5, seed=11)
    assert [v.values for v in a] == [v.values for v in draw_variants(p, 5, seed=11)]
    assert a[2].values == draw_variants(p, 3, seed=11)[2].values
    assert a[0].values != draw_variants(p, 1, seed=12)[0].values
    assert len({tuple(sorted(v.values.items())) for v in a}) == 5         # five different problems


def test_describe_lists_each_given_and_the_rules_that_apply():
    lines = describe(load("mlp-tanh-sigmoid"))
    assert "y: 0 or 1 (a label)" in lines                                  # target given as 1
    assert "w1_11: multiple of 0.1 in [-1, 1], not 0" in lines
    assert any("tanh" in ln and "sigmoid" in ln and "2.5" in ln for ln in lines)
    assert not any("relu" in ln for ln in lines)
    relu_lines = describe(load("mlp-relu-regression"))
    assert "b1: multiple of 0.1 in [-0.5, 0.5]" in relu_lines
    assert any("relu argument at least 0.05" in ln for ln in relu_lines)


def test_non_gradient_problems_are_refused(capsys, tmp_path):
    code, out, err = run_cli(["variants", "softmax", "--count", 2, "--seed", 1, "--out", tmp_path / "o"], capsys)
    assert code == 2 and err.startswith("derive: error: ") and err.count("\n") == 1
    assert not (tmp_path / "o").exists()


# -- answers files ---------------------------------------------------------------------------------

def test_answers_hold_the_key_in_check_names():
    sol = load("mlp-relu-regression").solve()
    a = answers_of(sol)
    # an independent computation of the exam's point: z2 < 0, so h2 is dead
    x1 = x2 = 1.0
    y, w = 0.5, dict(w1=0.1, w2=0.2, w3=-0.2, w4=-0.1, w5=0.5, w6=0.3)
    z1, z2 = w["w1"] * x1 + w["w2"] * x2, w["w3"] * x1 + w["w4"] * x2
    a1, a2 = max(z1, 0), max(z2, 0)
    o1 = w["w5"] * a1 + w["w6"] * a2
    d_o = o1 - y
    assert a["L"] == pytest.approx((y - o1) ** 2 / 2)
    assert a["dL/do1"] == pytest.approx(d_o)
    assert a["dL/dw5"] == pytest.approx(d_o * a1)
    assert a["dL/dw1"] == pytest.approx(d_o * w["w5"] * x1)
    assert a["dL/dw3"] == 0 and a["dL/dz2"] == 0
    assert a["w1"] == pytest.approx(w["w1"] - 0.5 * d_o * w["w5"] * x1)


def test_yaml_text_reads_back_as_written():
    data = {"a": 1e-05, "dL/dW": [[0.1, -2.5e-07], [3, 0.0]], "b": -0.1875}
    assert yaml.safe_load(yaml_text(data)) == data


# -- the command -----------------------------------------------------------------------------------

def _tree(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("pid", GRADIENT_BUILTINS)
def test_every_variant_passes_derive_check(pid, tmp_path, capsys, monkeypatch):
    out = tmp_path / "v"
    count = 4 if _size(pid) <= 60 else 2
    code, stdout, err = run_cli(["variants", pid, "--count", count, "--seed", 3, "--out", out, "--no-pdf",
                                 "--jobs", 1], capsys)
    assert code == 0, err
    monkeypatch.chdir(tmp_path)
    for k in range(1, count + 1):
        folder = out / f"variant-{k:02d}"
        assert {p.name for p in folder.iterdir()} == {"values.yaml", "answers.yaml", "question.tex", "key.tex",
                                                      "key.html"}
        code, res, err = run_cli(["check", pid, folder / "answers.yaml", "--values", folder / "values.yaml",
                                  "--format", "json"], capsys)
        assert code == 0, err
        items = yaml.safe_load(res)["items"]
        assert items and all(it["verdict"] == "correct" for it in items)
        assert len(items) == len(yaml.safe_load((folder / "answers.yaml").read_text()))
        # the question sheet: the model, the givens and what to find, nothing of the worked solution
        question = (folder / "question.tex").read_text()
        assert re.findall(r"\\subsection\*\{([^}]*)\}", question) == [
            "The model", "Your values", "Update rule", "Answers", "Working"]
        # one answer box per answer of the key, and the key's table has a row for each
        assert question.count("\\answerbox{") == len(yaml.safe_load((folder / "answers.yaml").read_text()))
        loss = yaml.safe_load((folder / "answers.yaml").read_text())[load(pid).solve().graph.loss]
        assert f"{loss:.6g}" in (folder / "key.tex").read_text() and f"{loss:.6g}" not in question
    assert (out / "all-keys.tex").is_file() and (out / "all-questions.tex").is_file()


def test_same_seed_same_bytes_whatever_the_jobs(tmp_path, capsys):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    for folder, jobs in ((a, 1), (b, 2)):
        code, _, err = run_cli(["variants", "mlp-tanh-sigmoid", "--count", 5, "--seed", 9, "--out", folder,
                                "--no-pdf", "--jobs", jobs], capsys)
        assert code == 0, err
    assert _tree(a) == _tree(b)
    run_cli(["variants", "mlp-tanh-sigmoid", "--count", 5, "--seed", 10, "--out", c, "--no-pdf"], capsys)
    assert (c / "variant-01" / "values.yaml").read_bytes() != (a / "variant-01" / "values.yaml").read_bytes()


def test_question_has_the_givens_and_no_answers_and_key_is_derive_solve(tmp_path, capsys):
    out = tmp_path / "v"
    run_cli(["variants", "mlp-relu-regression", "--count", 2, "--seed", 5, "--out", out, "--no-pdf"], capsys)
    p = load("mlp-relu-regression")
    for k in (1, 2):
        folder = out / f"variant-{k:02d}"
        values = yaml.safe_load((folder / "values.yaml").read_text())
        sol = p.solve(values)
        question = (folder / "question.tex").read_text()
        key = (folder / "key.tex").read_text()
        assert "Forward pass" not in question and "Forward pass" in key
        loss = f"{float(sol.forward['L']):.6g}"
        assert loss in key and loss not in question
        # every given shows on the question sheet
        for name, v in values.items():
            assert re.search(rf"(?<![\d.]){re.escape(f'{v:g}')}(?![\d.])", question), name
        # the key's worked solution is the solution's blocks, without the exam's wording of the question
        body = render_blocks(_worked_blocks(p, sol)).strip()
        assert body in key and body in (out / "all-keys.tex").read_text()
        assert p.question.split()[0] in solution_document(sol) and "exam" not in key
    assert (out / "all-questions.tex").read_text().count("Name:") == 4     # the sheet and its working page


@needs_tex
def test_pdfs_are_written_and_reproducible(tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    for folder in (a, b):      # (that --jobs changes no byte is tested without PDFs above)
        code, _, err = run_cli(["variants", "mlp-relu-regression", "--count", 2, "--seed", 4, "--out", folder,
                                "--jobs", 2], capsys)
        assert code == 0, err
    files = _tree(a)
    for name in ("variant-01/question.pdf", "variant-02/key.pdf", "all-keys.pdf", "all-questions.pdf"):
        assert files[name].startswith(b"%PDF")
    assert files == _tree(b)


def test_progress_is_a_bar_on_a_terminal_and_lines_otherwise():
    class Tty(io.StringIO):
        def isatty(self):
            return True

    plain, tty = io.StringIO(), Tty()
    for stream in (plain, tty):
        bar = Progress(stream)
        for k in range(1, 4):
            bar(k, 3)
    assert plain.getvalue().count("\n") == 3 and "3/3 done" in plain.getvalue()
    assert tty.getvalue().count("\r") == 3 and tty.getvalue().endswith("\n") and "[####" in tty.getvalue()


@pytest.mark.parametrize("argv, where", [
    (["--count", 0], "--count"),
    (["--count", "two"], "--count"),
    (["--count", 2, "--jobs", 0], "--jobs"),
    (["--count", 2, "--seed", -1], "--seed"),
    (["--count", 2, "--roster", "missing.csv"], "missing.csv"),
    (["--count", 2, "--roster", "noid.csv"], "noid.csv: line 1"),
    (["--count", 2, "--roster", "twice.csv"], "twice.csv: line 3"),
    (["--count", 2, "--roster", "empty.csv"], "empty.csv"),
])
def test_bad_input_is_one_line_and_writes_nothing(argv, where, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("noid.csv").write_text("name\nann\n")
    Path("twice.csv").write_text("id\ns1\ns1\n")
    Path("empty.csv").write_text("id\n")
    code, out, err = run_cli(["variants", "mlp-relu-regression", "--seed", 1, "--out", "o"] + argv, capsys)
    assert code == 2 and err.startswith(f"derive: error: {where}") and err.count("\n") == 1, err
    assert not Path("o").exists() and not Path("output").exists()


def test_a_problem_no_draw_can_satisfy_is_refused(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("dead.yaml").write_text("inputs: {x: 1}\ntargets: {y: 0.5}\nparameters: {w: 0.5}\n"
                                 "forward: {o: relu(-(w*x)**2 - 0.1)}\nloss: (o - y)**2 / 2\n")
    code, out, err = run_cli(["variants", "dead.yaml", "--count", 1, "--seed", 1, "--no-pdf"], capsys)
    assert code == 2 and err.startswith("derive: error: dead: no draw out of 4096") and err.count("\n") == 1
    assert not Path("output").exists()


def test_unknown_target_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(["variants", "no-such-net", "--count", 2, "--seed", 1], capsys)
    assert code == 2 and err.startswith("derive: error:") and "no-such-net" in err
    assert list(tmp_path.iterdir()) == []


def test_spec_file_variants(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("unit.yaml").write_text(SPEC)
    code, out, err = run_cli(["variants", "unit.yaml", "--count", 3, "--seed", 2, "--no-pdf"], capsys)
    assert code == 0, err
    folder = Path("output/variants/unit")
    for k in (1, 2, 3):
        v = folder / f"variant-{k:02d}"
        code, _, err = run_cli(["check", "unit.yaml", v / "answers.yaml", "--values", v / "values.yaml"], capsys)
        assert code == 0, err


# -- the roster ------------------------------------------------------------------------------------

def test_assignment_is_balanced_deterministic_and_order_free():
    ids = [f"s{k:03d}" for k in range(23)]
    a = assign(ids, 5, seed=1)
    counts = sorted(list(a.values()).count(v) for v in range(1, 6))
    assert counts == [4, 4, 5, 5, 5]
    assert a == assign(list(reversed(ids)), 5, seed=1)
    assert a != assign(ids, 5, seed=2)


def _class_csv(out: Path, roster: dict, wrong: dict) -> str:
    """Each student's answers are their own variant's key, except ``wrong``."""
    rows, columns = [], None
    for sid, k in roster.items():
        answers = yaml.safe_load((out / f"variant-{k:02d}" / "answers.yaml").read_text())
        columns = columns or list(answers)
        answers.update(wrong.get(sid, {}))
        rows.append([sid] + [answers[c] for c in columns])
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["id"] + columns)
    w.writerows(rows)
    return buf.getvalue()


def test_roster_check_uses_each_students_variant(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("students.csv").write_text("name,id\nAnn,a1\nBob,b2\nCy,c3\nDi,d4\nEd,e5\n")
    code, _, err = run_cli(["variants", "mlp-relu-regression", "--count", 3, "--seed", 8, "--out", "v",
                            "--no-pdf", "--roster", "students.csv"], capsys)
    assert code == 0, err
    text = Path("v/roster.csv").read_text()
    roster = {r["id"]: int(r["variant"]) for r in csv.DictReader(io.StringIO(text))}
    assert list(roster) == ["a1", "b2", "c3", "d4", "e5"]
    assert roster == assign(list(roster), 3, seed=8)
    assert set(roster.values()) == {1, 2, 3}
    Path("class.csv").write_text(_class_csv(Path("v"), roster, {"c3": {"L": "0.5"}}))
    code, out, err = run_cli(["check", "mlp-relu-regression", "class.csv", "--roster", "v/roster.csv",
                              "--format", "json"], capsys)
    assert code == 1, err                         # c3's loss is wrong
    res = yaml.safe_load(out)
    by_id = {r["id"]: r for r in res["rows"]}
    assert {i: r["variant"] for i, r in by_id.items()} == roster
    for sid, r in by_id.items():
        bad = [it["name"] for it in r["items"] if it["verdict"] != "correct"]
        assert bad == (["L"] if sid == "c3" else []), (sid, bad)
    code, out2, _ = run_cli(["check", "mlp-relu-regression", "class.csv", "--variants", "v", "--format", "json"],
                            capsys)
    assert code == 1 and yaml.safe_load(out2) == res
    # without the roster, the students of other variants are wrong against the exam's numbers
    code, out3, _ = run_cli(["check", "mlp-relu-regression", "class.csv", "--format", "json"], capsys)
    assert sum(r["summary"]["correct"] for r in yaml.safe_load(out3)["rows"]) < res["summary"]["correct"]
    code, text_out, _ = run_cli(["check", "mlp-relu-regression", "class.csv", "--variants", "v"], capsys)
    assert f"c3 (variant {roster['c3']})" in text_out


def test_roster_check_bad_input(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("students.csv").write_text("id\na1\nb2\n")
    run_cli(["variants", "mlp-relu-regression", "--count", 2, "--seed", 8, "--out", "v", "--no-pdf",
             "--roster", "students.csv"], capsys)
    roster = {r["id"]: int(r["variant"]) for r in csv.DictReader(open("v/roster.csv"))}
    Path("class.csv").write_text(_class_csv(Path("v"), roster, {}))
    Path("stranger.csv").write_text("id,L\nzz,0.1\n")
    cases = [
        (["class.csv", "--roster", "v/roster.csv", "--values", "v/variant-01/values.yaml"], "--roster"),
        (["stranger.csv", "--roster", "v/roster.csv"], "--roster: student 'zz'"),
        (["class.csv", "--roster", "students.csv"], "students.csv: line 1"),
        (["class.csv", "--variants", "nowhere"], "nowhere/roster.csv"),
        (["v/variant-01/answers.yaml", "--roster", "v/roster.csv"], "v/variant-01/answers.yaml"),
    ]
    for argv, where in cases:
        code, out, err = run_cli(["check", "mlp-relu-regression"] + argv, capsys)
        assert code == 2 and err.startswith(f"derive: error: {where}") and err.count("\n") == 1, (argv, err)
    os.remove("v/variant-02/values.yaml")
    code, _, err = run_cli(["check", "mlp-relu-regression", "class.csv", "--roster", "v/roster.csv"], capsys)
    assert code == 2 and "variant-02/values.yaml" in err


# -- the sheets read as a student reads them -------------------------------------------------------

#: raw text maths and tool internals that must never reach a student's sheet (pdftotext's view)
ASCII_MATHS = [r"\w_t\b", r"_\(", r"\^", r"\|\|", r"<=", r"\d x \d", r"e-0", r"\b[A-Za-z]+_[A-Za-z0-9]+\b"]
INTERNALS = [r"derive", r"yaml", r"seed", r"numpy", r"sympy", r"python", r"exam"]


def _pdf_text_page(path, page: int) -> str:
    import subprocess

    return subprocess.run(["pdftotext", "-f", str(page), "-l", str(page), str(path), "-"], capture_output=True,
                          text=True, check=True).stdout


def _pdf_text(path) -> str:
    import subprocess

    return subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True,
                          check=True).stdout


@needs_tex
@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="no pdftotext (poppler-utils)")
@pytest.mark.parametrize("pid", ["mlp-relu-regression", "rnn-bptt", "lstm-cell"])
def test_a_question_sheet_stands_alone(pid, tmp_path, capsys):
    from derive.document.sheet import answer_entries, key_rows

    out = tmp_path / "v"
    code, _, err = run_cli(["variants", pid, "--count", 1, "--seed", 7, "--out", out, "--jobs", 1], capsys)
    assert code == 0, err
    folder = out / "variant-01"
    text = _pdf_text(folder / "question.pdf")
    for pat in ASCII_MATHS:
        assert not re.search(pat, text), (pat, re.search(pat, text))
    for pat in INTERNALS:
        assert not re.search(pat, text, re.I), (pat, re.search(pat, text, re.I))
    assert "Name:" in text and "Working" in text
    # every asked quantity is in answers.yaml and in the key's answer table, in the same order
    sol = load(pid).solve(yaml.safe_load((folder / "values.yaml").read_text()))
    entries = answer_entries(sol)
    answers = yaml.safe_load((folder / "answers.yaml").read_text())
    assert [e.name for e in entries] == list(answers)
    key = (folder / "key.tex").read_text()
    question = (folder / "question.tex").read_text()
    tensors = any(e.shape for e in entries)
    for (label, value), e in zip(key_rows(entries), entries):
        assert (e.label.tex if tensors else label.tex) in key and value.tex in key and e.label.tex in question
    # the key's first page holds its answers (a table of matrices too tall for a page once left it blank)
    first = _pdf_text_page(folder / "key.pdf", 1)
    assert "Answers" in first and len(first.split()) > 40
    if pid == "rnn-bptt":     # the sheet asks dE_2/dW (part b): its answers and key have it
        assert "dE_2/dW" in answers and r"\frac{\partial E_{2}}{\partial W}" in key
    if pid == "lstm-cell":    # the gate equations and the stacking order
        assert "stacks the previous hidden state on top of the input" in " ".join(text.split())
        assert r"\sigma\left(W_{i} [h_{\text{prev}}; x] + b_{i}\right)" in question
    # the instructor's note has what the sheet leaves out
    note = (out / "instructor-note.md").read_text()
    assert f"--seed 7" in note and "derive check" in note and all(f"`{n}`" in note for n in answers)


@pytest.mark.parametrize("pid, symbol", [("lstm-cell", r"\frac{\partial L}{\partial \theta}"),
                                         ("mlp-relu-regression", "$g$")])
def test_the_update_rule_names_the_gradient_with_a_letter_the_network_does_not_use(pid, symbol, tmp_path, capsys):
    """The LSTM's g is its candidate cell state: its sheet writes the gradient as dL/dtheta, not g."""
    assert cli.main(["variants", pid, "--count", "1", "--seed", "3", "--out", str(tmp_path), "--no-pdf"]) == 0
    tex = (tmp_path / "variant-01" / "question.tex").read_text()
    rule = tex[tex.index("Update rule"):]
    assert "where " + (f"${symbol}$" if not symbol.startswith("$") else symbol) + " is the gradient" in rule
    if pid == "lstm-cell":
        assert "where $g$ is the gradient" not in tex
