"""numpy's slicing in specs (``a[0:4]``, ``G[:, 0:1]``, ``X[1:, :]``, ``H[:, 2]``)
and its adjoint ``pad(...)``: forward against loops, the VJP against central
differences, the printed matrix rule against the VJP (as numpy code, as spec
text read back, as batched code), a gated linear unit's steps as printed, the
generated code against the solver, and a sequence's step sliced in an unroll."""
from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from derive.cli import main
from derive.codegen.matrix import BatchPrinter, HELPERS, generate, load
from derive.engine import exprs as X
from derive.engine.core_ops import full_index
from derive.engine.matspec import build_matrix_spec
from derive.engine.reverse import _fit
from derive.engine.spec import SpecError
from derive.engine.tensor_op import TENSOR_OPS, max_vjp_error
from derive.problems import load as load_problem, tensor_only
from derive.problems.matrix_form import MatrixForm

ENGINEER = Path(__file__).resolve().parent / "engineer_specs"
RNG = np.random.default_rng(13)

#: (input shape, index as a spec writes it: (start, stop) with None for an open end, or an index)
INDEX_CASES = [
    ((8,), ((0, 4),)), ((8,), ((4, 8),)), ((8,), ((-3, None),)), ((8,), (5,)), ((8,), (-1,)),
    ((3, 2), ((None, None), (0, 1))), ((3, 2), ((None, None), (1, 2))), ((5, 3), ((1, None),)),
    ((3, 4), ((None, None), 2)), ((3, 4), (-1, (1, 3))), ((4, 3), (1, 2)),
    ((2, 3, 4), ((None, None), 1, (1, -1))), ((2, 3, 4, 5), (1, (0, 2), (None, None), 4)),
]
PAD_CASES = [((4,), ((0, 4),)), ((4,), ((2, 3),)), ((3, 1), ((0, 0), (0, 1))), ((2, 3), ((1, 2), (3, 0))),
             ((2, 2, 3), ((0, 1), (1, 0), (2, 2)))]


def loop_index(x, index):
    """x[index] entry by entry: the output's positions mapped to the input's."""
    idx = full_index(index, x.shape)
    ranges = [range(r[0], r[1]) if isinstance(r, tuple) else [r] for r in idx]
    kept = [isinstance(r, tuple) for r in idx]
    out_shape = tuple(len(r) for r, k in zip(ranges, kept) if k)
    out = np.zeros(out_shape)
    for src in itertools.product(*ranges):
        dst = tuple(s - r[0] for s, r, k in zip(src, idx, kept) if k)
        out[dst] = x[src]
    return out


def loop_pad(x, widths):
    out = np.zeros(tuple(n + a + b for n, (a, b) in zip(x.shape, widths)))
    for src in itertools.product(*(range(n) for n in x.shape)):
        out[tuple(s + a for s, (a, _) in zip(src, widths))] = x[src]
    return out


def _pad_params(widths):
    flat = [w for pair in widths for w in pair]
    return {f"w{k}": v for k, v in enumerate(flat)}


def _cases():
    for shape, index in INDEX_CASES:
        yield "slice", shape, {"index": index}
    for shape, widths in PAD_CASES:
        yield "pad", shape, _pad_params(widths)


CASES = list(_cases())
IDS = [f"{n}-{'x'.join(map(str, s))}-{p}" for n, s, p in CASES]


def _setup(name, shape, params):
    op = TENSOR_OPS[name]
    p = op.params_of(()); p.update(params)
    x = RNG.standard_normal(shape)
    out = op.forward((x,), p)
    return op, p, x, out, RNG.standard_normal(np.shape(out))


@pytest.mark.parametrize("name,shape,params", CASES, ids=IDS)
def test_forward_against_loops_and_vjp_against_central_differences(name, shape, params):
    op, p, x, out, G = _setup(name, shape, params)
    want = loop_index(x, p["index"]) if name == "slice" else loop_pad(x, tuple(
        (params[f"w{2 * k}"], params[f"w{2 * k + 1}"]) for k in range(len(shape))))
    np.testing.assert_array_equal(out, want)
    assert tuple(op.shape((shape,), p)) == np.shape(out)
    assert max_vjp_error(op, [x], p) < 1e-8
    # the adjoint of a selection is G among zeros; of a padding, the block G held
    if name == "slice":
        g = op.vjp(0, G, (x,), out, p)
        np.testing.assert_array_equal(loop_index(g, p["index"]), G)
        assert np.count_nonzero(g) == np.count_nonzero(G)


@pytest.mark.parametrize("name,shape,params", CASES, ids=IDS)
def test_matrix_rule_as_numpy_as_spec_text_and_batched_equals_the_vjp(name, shape, params):
    op, p, x, out, G = _setup(name, shape, params)
    sx, sG = X.TensorSymbol("x", shape), X.TensorSymbol("G", np.shape(out))
    vjp = op.vjp(0, G, (x,), out, p)
    np.testing.assert_array_equal(X.evaluate(op.symbolic((sx,), p), {"x": x}), out)
    rule = _fit(op.rule(0, sG, (sx,), X.TensorSymbol("Y", np.shape(out)), p), shape)
    np.testing.assert_array_equal(X.evaluate(rule, {"G": G}), vjp)
    # the rule's spec text through the spec parser
    text = X.spec(rule)
    data = {"inputs": {"G": {"shape": list(np.shape(out)) or [1], "value": np.reshape(G, np.shape(out) or (1,)).tolist()}},
            "forward": {"r": text}, "loss": "sum(r)"}
    if not np.shape(out):
        data["inputs"]["G"] = float(G)
    np.testing.assert_array_equal(build_matrix_spec(data).forward()["r"], vjp, err_msg=text)
    # batched code: two samples stacked give each one's adjoint
    env = {"numpy": np}
    exec(HELPERS, env)
    Gb = np.stack([G, 2 * G])
    got = eval(BatchPrinter().doprint(rule), env, {"G": Gb})    # noqa: S307 - our printer's text over our arrays
    np.testing.assert_array_equal(got, np.stack([vjp, 2 * vjp]))


@pytest.mark.parametrize("shapes,axis", [([(3,), (2,)], 0), ([(3, 1), (3, 2)], 1), ([(1, 4), (2, 4), (1, 4)], 0),
                                         ([(2, 3, 1), (2, 3, 2)], -1)])
def test_concat_against_loops_differences_and_its_printed_rule(shapes, axis):
    op = TENSOR_OPS["concat"]
    p = {"axis": axis}
    xs = [RNG.standard_normal(s) for s in shapes]
    out = op.forward(tuple(xs), p)
    ax = axis % len(shapes[0])
    at = 0
    for x in xs:                                  # each block's entries where concatenation puts them
        for src in itertools.product(*(range(n) for n in x.shape)):
            dst = tuple(v + at if k == ax else v for k, v in enumerate(src))
            assert out[dst] == x[src]
        at += x.shape[ax]
    assert out.shape == op.shape(tuple(shapes), p)
    assert max_vjp_error(op, xs, p) < 1e-8
    G = RNG.standard_normal(out.shape)
    syms = tuple(X.TensorSymbol(f"x{i}", s) for i, s in enumerate(shapes))
    env = {f"x{i}": x for i, x in enumerate(xs)}
    np.testing.assert_array_equal(X.evaluate(op.symbolic(syms, p), env), out)
    sG = X.TensorSymbol("G", out.shape)
    hel = {"numpy": np}
    exec(HELPERS, hel)
    for i in range(len(xs)):
        rule = op.rule(i, sG, syms, None, p)
        vjp = op.vjp(i, G, tuple(xs), out, p)
        np.testing.assert_array_equal(X.evaluate(rule, {"G": G}), vjp)
        data = {"inputs": {"G": {"shape": list(out.shape), "value": G.tolist()}}, "forward": {"r": X.spec(rule)},
                "loss": "sum(r)"}
        np.testing.assert_array_equal(build_matrix_spec(data).forward()["r"], vjp)
    # the forward's spec text and batched code
    data = {"inputs": {f"x{i}": {"shape": list(s), "value": x.tolist()} for i, (s, x) in enumerate(zip(shapes, xs))},
            "forward": {"r": X.spec(op.symbolic(syms, p))}, "loss": "sum(r)"}
    np.testing.assert_array_equal(build_matrix_spec(data).forward()["r"], out)
    batched = {"x0": np.stack([xs[0], -xs[0]])} | {f"x{i}": x for i, x in enumerate(xs) if i}
    got = eval(BatchPrinter().doprint(op.symbolic(syms, p)), hel, batched)   # noqa: S307 - our printer's text
    np.testing.assert_array_equal(got[0], out)
    np.testing.assert_array_equal(got[1], op.forward(tuple([-xs[0]] + xs[1:]), p))


def test_printed_forms_of_a_slice_and_its_adjoint():
    a, G = X.TensorSymbol("a", (8,)), X.TensorSymbol("G", (3, 2))
    op = TENSOR_OPS["slice"]
    assert X.spec(op.symbolic((a,), {"index": ((-4, None),)})) == "a[4:8]"
    assert X.latex(op.symbolic((a,), {"index": ((0, 4),)})) == "a_{1:4}"
    assert X.spec(op.symbolic((G,), {"index": ((None, None), (0, 1))})) == "G[:, 0:1]"
    assert X.latex(op.symbolic((G,), {"index": ((None, None), 1)})) == "G_{:,2}"
    assert X.numpy_code(op.symbolic((G,), {"index": (2,)})) == "G[2]"
    g = X.TensorSymbol("g", (3,))
    col = op.rule(0, g, (G,), None, {"index": ((None, None), 1)})
    assert X.spec(col) == "pad(reshape(g, 3, 1), 0, 0, 1, 0)"
    assert X.latex(col) == r"\begin{bmatrix} \mathbf{0} & g \end{bmatrix}"
    row = op.rule(0, X.TensorSymbol("r", (2,)), (G,), None, {"index": (0,)})
    assert X.latex(row) == r"\begin{bmatrix} r^{\top} \\ \mathbf{0} \end{bmatrix}"


def test_gated_linear_unit_steps_as_printed():
    """a[0:4] * sigmoid(a[4:8]): the adjoint of a is the two halves one above the other."""
    mf = MatrixForm.from_data(yaml.safe_load((ENGINEER / "glu.yaml").read_text()))
    step = {s.name: s for s in mf.steps}
    assert step["dL/da"].spec == ("stack(dL_dh * sigmoid(a[4:8]), "
                                  "dL_dh * a[0:4] * sigmoid(a[4:8]) * (1 - sigmoid(a[4:8])))")
    assert step["dL/da"].latex == (
        r"\begin{bmatrix} \frac{\partial L}{\partial h} \odot \sigma\left(a_{5:8}\right) \\ "
        r"\frac{\partial L}{\partial h} \odot a_{1:4} \odot \sigma\left(a_{5:8}\right) \odot "
        r"\left(1 - \sigma\left(a_{5:8}\right)\right) \end{bmatrix}")
    assert step["dL/dW"].spec == "outer(dL_da, x)"
    assert [s for s in mf.graph.nodes["h"].symbol.name] and X.spec(
        mf.graph.symbolic(mf.graph.nodes["h"].expr)) == "a[0:4] * sigmoid(a[4:8])"
    assert all(c["passed"] for c in mf.checks)
    # the gradient by hand: h = u * s(v), u = a[:4], v = a[4:]
    v = {n: np.asarray(mf.values[n]) for n in ("a", "x", "y", "V")}
    u, s = v["a"][:4], 1 / (1 + np.exp(-v["a"][4:]))
    dh = v["V"].T @ (v["V"] @ (u * s) - v["y"])
    np.testing.assert_allclose(mf.gradient("W"), np.outer(np.concatenate([dh * s, dh * u * s * (1 - s)]), v["x"]),
                               rtol=1e-13)


def test_layer_norm_centring_and_a_batch_mean_print_as_a_person_writes_them():
    mf = MatrixForm.from_data(yaml.safe_load((ENGINEER / "residual-layernorm.yaml").read_text()))
    step = {s.name: s.spec for s in mf.steps}
    assert step["dL/dH"] == "dL_dC - mean(dL_dC, 1)"
    assert step["dL/dZ"] == "Z - Tg + Z / 12"         # sum((Z - Tg)**2) / 2 + sum(Z * Z) / 24
    bias = MatrixForm.from_data(yaml.safe_load((ENGINEER / "batch-bias.yaml").read_text()))
    assert bias.steps[0].spec == "(Z - Tg) / 4"        # mean over 4 rows of sum(..., 1) / 2, times 2
    half = MatrixForm.from_data(yaml.safe_load((ENGINEER / "half-sum-squares.yaml").read_text()))
    assert half.steps[0].spec == "y + 1/15"            # sum(y * y) / 2 + mean(y), y 3 x 5


def test_mixture_of_experts_gate_steps_as_printed():
    mf = MatrixForm.from_data(yaml.safe_load((ENGINEER / "moe.yaml").read_text()))
    step = {s.name: s for s in mf.steps}
    assert step["dL/dP"].spec == "-Y / 3"                   # a mean over 3 rows of -sum(Y * P, 1)
    assert step["dL/dM"].spec == "dL_dP - softmax(M, 1) * sum(dL_dP, 1)"
    assert step["dL/dE1"].spec == "dL_dM * G[:, 0:1]"
    # the gate's columns: the row sums of each expert's share, side by side
    assert step["dL/dG"].spec == "concat(sum(dL_dM * E1, 1), sum(dL_dM * E2, 1), 1)"
    assert step["dL/dG"].latex == (
        r"\begin{bmatrix} \left(\frac{\partial L}{\partial M} \odot E_{1}\right) \mathbf{1} & "
        r"\left(\frac{\partial L}{\partial M} \odot E_{2}\right) \mathbf{1} \end{bmatrix}")
    # reshape(col(G, j), 3, 1) instead of G[:, j:j+1]: the same step
    assert {s.name: s for s in MatrixForm.from_data(yaml.safe_load((ENGINEER / "moe2.yaml").read_text())).steps}[
        "dL/dG"].spec == step["dL/dG"].spec
    # the slices and col() give the same gradients
    other = MatrixForm.from_data(yaml.safe_load((ENGINEER / "moe2.yaml").read_text()))
    for name in ("Wg", "W1", "W2", "b"):
        np.testing.assert_allclose(mf.gradient(name), other.gradient(name), rtol=1e-14, atol=1e-16)


@pytest.mark.parametrize("name", ["glu.yaml", "glu-batch.yaml", "moe.yaml"])
def test_generated_code_of_a_sliced_spec_matches_the_solver(name, tmp_path):
    out = tmp_path / "gen.py"
    assert main(["codegen", str(ENGINEER / name), "--out", str(out)]) == 0
    m = load(out.read_text())
    mf = MatrixForm.from_data(yaml.safe_load((ENGINEER / name).read_text()))
    loss, grads = m.loss_and_gradients()
    assert float(loss) == pytest.approx(float(mf.values[mf.loss]), rel=1e-13)
    for p, g in grads.items():
        np.testing.assert_allclose(g, mf.gradient(p), rtol=1e-12, atol=1e-14, err_msg=p)
    # a batch of inputs: each sample's gradients are the solver's at that sample, and the batch sums agree
    inputs = [n.name for n in mf.graph.of_kind("input")]
    batch = {n: mf.leaves[n] + 0.3 * RNG.standard_normal((4,) + np.shape(mf.leaves[n])) for n in inputs}
    per = m.loss_and_gradients(**batch)[1]
    total = m.batch_loss_and_gradients(**batch)[1]
    for i in range(4):
        at = MatrixForm(mf.spec, {**mf.leaves, **{n: v[i] for n, v in batch.items()}})
        for p in per:
            np.testing.assert_allclose(per[p][i], at.gradient(p), rtol=1e-11, atol=1e-13, err_msg=p)
    for p in per:
        np.testing.assert_allclose(per[p].sum(axis=0), total[p], rtol=1e-12, atol=1e-13)


def test_a_sliced_spec_goes_to_the_matrix_engine_and_solves(capsys):
    data = yaml.safe_load((ENGINEER / "glu.yaml").read_text())
    assert tensor_only(data)
    problem = load_problem(str(ENGINEER / "glu.yaml"))
    assert type(problem).__name__ == "MatrixSpecProblem"
    assert main(["solve", str(ENGINEER / "glu.yaml"), "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [s["name"] for s in out["matrix_steps"]][:3] == ["dL/do", "dL/dh", "dL/da"]
    assert all(c["passed"] for c in out["checks"])


def test_a_sequence_step_sliced_in_an_unroll():
    """H[t-1] is a step (counted from 1); H[t-1][0:2] slices that step (counted from 0)."""
    data = {"inputs": {"I": {"shape": ["T", 2], "value": [[0.5, -1], [1, 0.25], [-0.5, 2]]}},
            "parameters": {"W": {"shape": [4, 2], "value": [[0.1, 0.2], [-0.3, 0.1], [0.2, -0.2], [0.05, 0.3]]},
                           "U": {"shape": [4, 2], "value": [[0.2, -0.1], [0.1, 0.3], [-0.2, 0.1], [0.3, 0.05]]}},
            "unroll": {"T": 3, "initial": {"h": "I[1]"},
                       "equations": {"a": "W @ h[t-1] + U @ I[t]", "h": "a[0:2] * sigmoid(a[2:4])"}},
            "loss": "sum(h[T] * h[T]) + sum(h[2][1:2])"}
    assert tensor_only(data)
    mf = MatrixForm.from_data(data)
    assert all(c["passed"] for c in mf.checks)
    W, U, I = (np.asarray(data[s][n]["value"], float) for s, n in (("parameters", "W"), ("parameters", "U"),
                                                                   ("inputs", "I")))

    def loss(W, U):
        h, hs = I[0], []
        for t in range(3):
            a = W @ h + U @ I[t]
            h = a[:2] / (1 + np.exp(-a[2:]))
            hs.append(h)
        return np.sum(hs[2] ** 2) + hs[1][1]
    assert float(mf.values[mf.loss]) == pytest.approx(loss(W, U), rel=1e-14)
    eps = 1e-6
    for i, j in itertools.product(range(4), range(2)):
        d = np.zeros((4, 2)); d[i, j] = eps
        fd = (loss(W + d, U) - loss(W - d, U)) / (2 * eps)
        assert mf.gradient("W")[i, j] == pytest.approx(fd, abs=1e-8)


def test_slicing_an_expression_and_negative_bounds():
    data = {"inputs": {"x": {"shape": [3], "value": [0.5, -1, 2]}},
            "parameters": {"W": {"shape": [4, 3], "value": [[0.1 * (i - j) for j in range(3)] for i in range(4)]}},
            "forward": {"h": "tanh((W @ x)[-2:]) + (W @ x)[0:2]", "m": "W[1:, :][:, 2]"},
            "loss": "sum(h * h) + sum(m)"}
    mf = MatrixForm.from_data(data)
    W, x = np.asarray(data["parameters"]["W"]["value"]), np.asarray(data["inputs"]["x"]["value"])
    z = W @ x
    h = np.tanh(z[-2:]) + z[:2]
    assert float(mf.values[mf.loss]) == pytest.approx(np.sum(h * h) + np.sum(W[1:, 2]), rel=1e-14)
    assert all(c["passed"] for c in mf.checks)


@pytest.mark.parametrize("text,words", [
    ("a[0:n]", "a[0:n]: an index or a slice's bound is a whole number"),
    ("a[0:__import__('os').getpid()]", "a[0:__import__('os').getpid()]: an index or a slice's bound"),
    ("a[0:9]", "a[0:9]: axis 0 has 8 entries: a slice's bounds are whole numbers from -8 to 8, got 9"),
    ("a[0:4:1] + a[4:8:2]", "a[4:8:2]: a slice's step must be 1"),
    ("a[ 2 : 2 ]", "a[ 2 : 2 ]: axis 0: the slice 2:2 selects nothing"),
    ("a[...]", "a[...]: an index or a slice's bound is a whole number"),
])
def test_refusals_echo_the_text_as_written(text, words):
    data = {"inputs": {"a": {"shape": [8], "value": 1}}, "parameters": {"w": 1.0},
            "forward": {"h": f"w * ({text})"}, "loss": "sum(h)"}
    with pytest.raises(SpecError) as err:
        build_matrix_spec(data)
    assert str(err.value).startswith("forward.h: " + words), str(err.value)
