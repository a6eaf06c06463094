"""`derive codegen`: the generated module, imported from a file, against the
worked solution's gradients, finite differences and derive's independent
numpy backprop; batching, vector groups, determinism, hostile text."""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import sympy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from derive.cli import main
from derive.codegen.scalar import compile_gradient, generate
from derive.engine.graph import Graph
from derive.engine.numeric import numpy_backprop
from derive.problems.base import GraphProblem
from derive.problems import load

ROOT = Path(__file__).resolve().parents[1]
MLPS = ["mlp-relu-regression", "mlp-tanh-sigmoid"]


def import_file(path: Path):
    spec = importlib.util.spec_from_file_location(f"gen_{path.stem.replace('-', '_')}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def generated(target: str, tmp_path: Path):
    out = tmp_path / f"{Path(target).stem}.py"
    assert main(["codegen", target, "--out", str(out)]) == 0
    return import_file(out)


def central_differences(loss, values: dict, name: str, h: float = 1e-6):
    step = h * np.maximum(1.0, np.abs(values[name]))
    plus = dict(values, **{name: values[name] + step})
    minus = dict(values, **{name: values[name] - step})
    return (loss(**plus) - loss(**minus)) / (2 * step)


@pytest.mark.parametrize("pid", MLPS)
def test_builtin_matches_worked_solution(pid, tmp_path):
    module = generated(pid, tmp_path)
    sol = load(pid).solve()
    loss, grads = module.loss_and_gradients()
    assert float(loss) == pytest.approx(float(sol.forward["L"]), rel=1e-14)
    assert list(grads) == list(sol.graph.parameters)
    for p, g in grads.items():
        assert float(g) == pytest.approx(float(sol.gradients[p]), rel=1e-12, abs=1e-15), p


@pytest.mark.parametrize("pid", MLPS)
def test_builtin_batched_against_finite_differences_and_numpy(pid, tmp_path):
    module = generated(pid, tmp_path)
    problem = load(pid)
    rng = np.random.default_rng(7)
    shape = (4, 5)
    values = {n: rng.normal(0.0, 0.7, shape) for n in module.NAMES}
    loss, grads = module.loss_and_gradients(**values)
    assert np.shape(loss) == shape
    independent = numpy_backprop(problem.graph, values)
    for p in problem.graph.parameters:
        assert grads[p].shape == shape
        np.testing.assert_allclose(grads[p], independent[p], rtol=1e-12, atol=1e-14)
        fd = central_differences(module.loss, values, p)
        np.testing.assert_allclose(grads[p], fd, rtol=1e-6, atol=1e-8)
    # one element of the batch is the same as a scalar call
    point = {n: v[2, 3] for n, v in values.items()}
    l1, g1 = module.loss_and_gradients(**point)
    assert float(l1) == loss[2, 3]
    assert all(float(g1[p]) == grads[p][2, 3] for p in g1)


def test_relu_derivative_at_zero_is_zero():
    f = compile_gradient(load("mlp-relu-regression"))
    # z1 = w1 + w2 = 0 exactly: relu'(0) = 0, so w1 and w2 get no gradient
    _, grads = f(w1=np.array([0.25, 0.3]), w2=np.array([-0.25, -0.1]))
    assert grads["w1"][0] == 0.0 and grads["w2"][0] == 0.0
    assert grads["w1"][1] != 0.0


def test_generated_text_is_deterministic_across_processes(tmp_path):
    script = ("import sys; from derive.codegen.scalar import generate; from derive.problems import load; "
              "sys.stdout.write(generate(load(sys.argv[1])))")
    for pid in MLPS:
        outs = set()
        for seed in ("0", "1", "12345"):
            env = dict(os.environ, PYTHONHASHSEED=seed)
            outs.add(subprocess.run([sys.executable, "-c", script, pid], capture_output=True, check=True,
                                    env=env, cwd=ROOT).stdout)
        assert len(outs) == 1
        assert outs.pop().decode() == generate(load(pid))


def test_cli_stdout_equals_out_file(tmp_path, capsys):
    assert main(["codegen", "mlp-tanh-sigmoid"]) == 0
    printed = capsys.readouterr().out
    out = tmp_path / "m.py"
    assert main(["codegen", "mlp-tanh-sigmoid", "--out", str(out)]) == 0
    assert out.read_text() == printed
    assert printed.startswith('"""Loss and gradients of')
    assert "dL_dz1 = dL_dh1*(1 - h1**2)" in printed  # the worked names are the variables


def write_spec(tmp_path, text: str, name="net.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_names_that_collide_with_generated_ones(tmp_path):
    # np, t0 (a cse temporary's name), dL_dz (an adjoint's name), shape, given, values
    spec = write_spec(tmp_path, """
inputs: {np: 0.5, values: -1.5}
targets: {given: 0.25}
parameters: {t0: 0.3, shape: -0.7, dL_dz: 0.2}
forward:
  z: t0*np + shape*values + dL_dz
  t1: tanh(z)
  t2: sigmoid(z) * t1
loss: (t2 - given)**2 + (t1 - given)**2
""")
    module = generated(str(spec), tmp_path)
    sol = load(str(spec)).solve()
    loss, grads = module.loss_and_gradients()
    assert float(loss) == pytest.approx(float(sol.forward["L"]), rel=1e-13)
    for p in ("t0", "shape", "dL_dz"):
        assert float(grads[p]) == pytest.approx(float(sol.gradients[p]), rel=1e-12), p


def test_names_of_python_builtins(tmp_path):
    spec = write_spec(tmp_path, """
inputs: {print: 0.5, exec: 2}
parameters: {nonlocal_: 0.3, sum: 0.2, max: 0.1, loss: -0.4}
forward:
  o: tanh(print*nonlocal_ + exec*sum) + max*loss
loss: o**2
""")
    module = generated(str(spec), tmp_path)
    sol = load(str(spec)).solve()
    _, grads = module.loss_and_gradients()
    for p in sol.graph.parameters:
        assert float(grads[p]) == pytest.approx(float(sol.gradients[p]), rel=1e-12), p


def test_constant_and_missing_gradients_have_the_batch_shape(tmp_path):
    spec = write_spec(tmp_path, """
inputs: {x: 2}
parameters: {w: 0.5, c: 1.5, unused: 3}
forward: {o: w*x}
loss: 3*c + o**2
""")
    f = compile_gradient(load(str(spec)))
    _, grads = f(w=np.array([1.0, 2.0, 3.0]))
    np.testing.assert_array_equal(grads["c"], [3.0, 3.0, 3.0])
    np.testing.assert_array_equal(grads["unused"], [0.0, 0.0, 0.0])
    np.testing.assert_array_equal(grads["w"], 2 * np.array([2.0, 4.0, 6.0]) * 2)


def test_unknown_and_missing_values_are_refused():
    f = compile_gradient(load("mlp-relu-regression"))
    with pytest.raises(TypeError, match="unknown value 'w9'"):
        f(w9=1.0)
    g = Graph("bare")
    x = g.add_leaf("x", "input")
    w = g.add_leaf("w", "parameter")
    g.add("L", (w * x) ** 2, kind="loss")
    bare = compile_gradient(g)
    with pytest.raises(TypeError, match="no value given for 'x'"):
        bare(w=1.0)
    loss, grads = bare(x=3.0, w=0.5)
    assert float(grads["w"]) == 2 * 0.5 * 9.0


def test_group_valued_parameters_are_returned_with_their_shape():
    # L = 1/2 ||tanh(W x) - y||^2 with W 2x3 and x 3 built as groups of scalar nodes
    g = Graph("groups")
    xs = [g.add_leaf(f"x_{j}", "input") for j in range(3)]
    ys = [g.add_leaf(f"y_{i}", "target") for i in range(2)]
    W = [[g.add_leaf(f"W_{i}{j}", "parameter") for j in range(3)] for i in range(2)]
    b = [g.add_leaf(f"b_{i}", "parameter") for i in range(2)]
    g.add_group("x", (3,), [f"x_{j}" for j in range(3)], "input")
    g.add_group("y", (2,), [f"y_{i}" for i in range(2)], "target")
    g.add_group("W", (2, 3), [f"W_{i}{j}" for i in range(2) for j in range(3)], "parameter")
    g.add_group("b", (2,), [f"b_{i}" for i in range(2)], "parameter")
    hs = []
    for i in range(2):
        z = g.add(f"z_{i}", sum(W[i][j] * xs[j] for j in range(3)) + b[i])
        hs.append(g.add(f"h_{i}", sympy.tanh(z)))
    g.add("L", sum((hs[i] - ys[i]) ** 2 for i in range(2)) / 2, kind="loss")
    f = compile_gradient(g)

    rng = np.random.default_rng(3)
    n = 6
    x, y = rng.normal(size=(n, 3)), rng.normal(size=(n, 2))
    Wv, bv = rng.normal(size=(n, 2, 3)), rng.normal(size=(n, 2))
    loss, grads = f(x=x, y=y, W=Wv, b=bv)
    assert set(grads) == {"W", "b"}
    assert grads["W"].shape == (n, 2, 3) and grads["b"].shape == (n, 2)
    # independent plain-numpy reverse pass, batched
    h = np.tanh(np.einsum("nij,nj->ni", Wv, x) + bv)
    dz = (h - y) * (1 - h ** 2)
    np.testing.assert_allclose(loss, 0.5 * ((h - y) ** 2).sum(axis=1), rtol=1e-13)
    np.testing.assert_allclose(grads["b"], dz, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(grads["W"], dz[:, :, None] * x[:, None, :], rtol=1e-12, atol=1e-14)
    with pytest.raises(ValueError, match="W must have shape"):
        f(x=x, y=y, W=rng.normal(size=(n, 3, 2)), b=bv)


def test_hostile_title_stays_in_the_docstring(tmp_path):
    import json

    marker = tmp_path / "pwned"
    title = f'x""" ; open({str(marker)!r}, "w").write("1") ; """ \\ end\n"""'
    spec = write_spec(tmp_path, json.dumps({"name": title, "inputs": {"x": 1}, "parameters": {"w": 0.5},
                                            "forward": {"o": "w*x"}, "loss": "o**2"}), "net.json")
    module = generated(str(spec), tmp_path)
    assert not marker.exists()
    assert "open(" in module.__doc__ and '"""' in module.__doc__
    assert float(module.loss_and_gradients()[1]["w"]) == 1.0


def test_codegen_refusals_are_one_line(tmp_path, capsys):
    out = tmp_path / "never.py"
    bad = write_spec(tmp_path, "inputs: {x: 1}\nparameters: {w: 1}\nforward: {o: w*q}\nloss: o**2\n")
    assert main(["codegen", str(bad), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"derive: error: {bad}: forward.o: unknown name 'q'"]
    assert not out.exists()
    assert main(["codegen", "no-such-problem"]) == 2
    assert capsys.readouterr().err.startswith("derive: error: unknown problem 'no-such-problem'")


# -- random specs: generated code = worked solution = finite differences ---------

UNARY = ["tanh", "sigmoid", "softplus", "exp", "relu"]


@st.composite
def random_specs(draw):
    """A small random network over the operation table, written as a spec."""
    n_in = draw(st.integers(1, 3))
    n_par = draw(st.integers(1, 4))
    nums = st.integers(-9, 9).map(lambda k: k / 8)
    names = [f"x{i}" for i in range(n_in)] + [f"p{i}" for i in range(n_par)]
    values = {n: draw(nums) for n in names}
    forward = {}
    for k in range(draw(st.integers(1, 5))):
        a, b = draw(st.sampled_from(names)), draw(st.sampled_from(names))
        form = draw(st.sampled_from(["unary", "mul", "add", "div", "pow", "log", "sqrt"]))
        if form == "unary":
            rhs = f"{draw(st.sampled_from(UNARY))}({a} - {b}/2)"
        elif form == "mul":
            rhs = f"{a}*{b}"
        elif form == "add":
            rhs = f"{a} + 2*{b}"
        elif form == "div":
            rhs = f"{a}/(1 + {b}**2)"
        elif form == "pow":
            rhs = f"{a}**{draw(st.integers(2, 3))}"
        elif form == "log":
            rhs = f"log(1 + {a}**2)"
        else:
            rhs = f"sqrt(1 + {a}**2)"
        forward[f"n{k}"] = rhs
        names.append(f"n{k}")
    loss = " + ".join(f"{n}**2" for n in list(forward)[-2:]) + " + " + names[n_in]
    data = {"inputs": {n: values[n] for n in names[:n_in]},
            "parameters": {n: values[n] for n in names[n_in:n_in + n_par]},
            "forward": forward, "loss": loss}
    return data


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_specs())
def test_random_specs(data):
    problem = GraphProblem(data, "random.yaml", id="random", user=True)
    sol = problem.solve()
    f = compile_gradient(problem)
    loss, grads = f()
    assert float(loss) == pytest.approx(float(sol.forward["L"]), rel=1e-11, abs=1e-12)
    for p in problem.graph.parameters:
        assert float(grads[p]) == pytest.approx(float(sol.gradients[p]), rel=1e-10, abs=1e-12), p
    # finite differences of an independent forward pass, away from relu kinks
    fd_check = [c for c in sol.checks if c["method"] == "finite-difference"][0]
    if fd_check["passed"]:
        from derive.engine.numeric import finite_differences

        leaves = {n: float(v) for n, v in sol.forward_leaves().items()}
        fd = finite_differences(problem.graph, leaves)
        for p in problem.graph.parameters:
            assert float(grads[p]) == pytest.approx(float(fd[p]), rel=1e-5, abs=1e-6), p


# -- vectors and matrices: the built-ins over tensors and the vector specs -------

TENSOR_TARGETS = ["rnn-bptt", "lstm-cell", "bahdanau-attention", "examples/rnn-bptt.yaml",
                  "examples/lstm-cell.yaml", "examples/bahdanau-attention.yaml", "examples/gru-cell.yaml"]


@pytest.mark.parametrize("target", TENSOR_TARGETS)
def test_tensor_problem_gradients_have_the_parameter_shapes(target, tmp_path):
    module = generated(target if "/" not in target else str(ROOT / target), tmp_path)
    problem = load(target if "/" not in target else str(ROOT / target))
    sol = problem.solve()
    tg = sol.model.tg
    loss, grads = module.loss_and_gradients()
    assert float(loss) == pytest.approx(float(sol.forward[sol.graph.loss]), rel=1e-13)
    params = [t for t in tg.tensors.values() if tg.kinds[t.name] == "parameter"]
    assert list(grads) == [t.name for t in params]
    for t in params:
        assert grads[t.name].shape == t.shape
        expected = np.array([float(v) for v in sol.adjoint_of(t.name)]).reshape(t.shape)
        np.testing.assert_allclose(grads[t.name], expected, rtol=1e-11, atol=1e-15)
    # central differences of the generated forward pass, entry by entry, at a random point
    rng = np.random.default_rng(2)
    values = {n: rng.normal(0.0, 0.5, module.SHAPES.get(n, ())) for n in module.NAMES}
    _, grads = module.loss_and_gradients(**values)
    h = 1e-6
    for t in params:
        fd = np.zeros(t.shape)
        for idx in np.ndindex(t.shape):
            plus, minus = values[t.name].copy(), values[t.name].copy()
            plus[idx] += h
            minus[idx] -= h
            fd[idx] = (module.loss(**dict(values, **{t.name: plus}))
                       - module.loss(**dict(values, **{t.name: minus}))) / (2 * h)
        np.testing.assert_allclose(grads[t.name], fd, rtol=1e-6, atol=1e-9)


def test_tensor_problem_batched_call_equals_single_calls(tmp_path):
    module = generated("lstm-cell", tmp_path)
    rng = np.random.default_rng(4)
    batch = 5
    values = {n: rng.normal(0.0, 0.5, (batch,) + module.SHAPES.get(n, ())) for n in module.NAMES}
    loss, grads = module.loss_and_gradients(**values)
    assert loss.shape == (batch,) and grads["W_i"].shape == (batch, 2, 4)
    for i in range(batch):
        l1, g1 = module.loss_and_gradients(**{n: v[i] for n, v in values.items()})
        assert float(l1) == loss[i]
        for p in g1:
            np.testing.assert_array_equal(g1[p], grads[p][i])


def test_tensor_codegen_is_deterministic_across_processes():
    script = ("import sys; from derive.codegen.scalar import generate; from derive.problems import load; "
              "sys.stdout.write(generate(load(sys.argv[1])))")
    outs = set()
    for seed in ("0", "7"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        outs.add(subprocess.run([sys.executable, "-c", script, "examples/gru-cell.yaml"], capture_output=True,
                                check=True, env=env, cwd=ROOT).stdout)
    assert len(outs) == 1


def test_codegen_refuses_problems_without_gradients(capsys):
    assert main(["codegen", "conv-arithmetic"]) == 2
    assert capsys.readouterr().err == ("derive: error: conv-arithmetic: has no gradients to generate code "
                                       "for (it is not a network problem)\n")
