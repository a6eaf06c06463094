"""transposed-conv against numpy computations written here."""
import numpy as np
import pytest
import sympy

from derive.problems import load
from derive.engine.spec import SpecError


def scatter(x, k, stride=1):
    n, m = x.shape[0], k.shape[0]
    o = (n - 1) * stride + m
    out = np.zeros((o, o))
    for i in range(n):
        for j in range(n):
            out[i * stride:i * stride + m, j * stride:j * stride + m] += x[i, j] * k
    return out


def test_size_and_ones_result():
    v = load("transposed-conv").solve().values
    ref = scatter(np.ones((3, 3)), np.ones((7, 7)))
    assert v["output_shape"] == list(ref.shape)
    assert np.array_equal(np.array(v["ones_result"]), ref)


@pytest.mark.parametrize("n,k,st,p", [(3, 7, 2, 0), (4, 3, 2, 1), (2, 5, 3, 0)])
def test_size_overrides_match_scatter(n, k, st, p):
    v = load("transposed-conv").solve({"input_size": n, "kernel_size": k, "stride": st, "padding": p}).values
    ref = scatter(np.ones((n, n)), np.ones((k, k)), st)
    ref = ref[p:ref.shape[0] - p, p:ref.shape[1] - p]
    assert v["output_size"] == ref.shape[0]
    assert np.array_equal(np.array(v["ones_result"]), ref)


def _matrix(v):
    names = {f"{c}{i}{j}": sympy.Symbol(f"{c}{i}{j}", real=True) for c in "xk" for i in (1, 2, 3) for j in (1, 2, 3)}
    return [[sympy.sympify(e, locals=names) for e in row] for row in v], names


@pytest.mark.parametrize("stride", [1, 2])
def test_matrix_form_is_a_transposed_convolution(stride):
    v = load("transposed-conv").solve({"matrix_stride": stride}).values
    CT, names = _matrix(v["matrix"])
    rng = np.random.default_rng(7)
    x, k = rng.standard_normal((2, 2)), rng.standard_normal((2, 2))
    subs = {names[f"x{i + 1}{j + 1}"]: x[i, j] for i in range(2) for j in range(2)}
    subs.update({names[f"k{i + 1}{j + 1}"]: k[i, j] for i in range(2) for j in range(2)})
    M = np.array([[float(e.subs(subs)) for e in row] for row in CT])
    ref = scatter(x, k, stride)
    assert np.allclose((M @ x.reshape(-1)).reshape(ref.shape), ref)
    result, _ = _matrix(v["result"])
    assert np.allclose(np.array([[float(e.subs(subs)) for e in row] for row in result]), ref)


def test_seed001_answer():
    """Seed 001 (kernel [[a, b], [c, d]], input [[x, y], [z, w]]) writes a '9 x 4' matrix with only
    8 rows, whose rows 7 and 8 are (0 0 d 0), (0 0 0 d); the right rows 7-9 are (0 0 c 0),
    (0 0 d c), (0 0 0 d). Its product vector and 3 x 3 result are right."""
    a, b, c, d, x, y, z, w = sympy.symbols("a b c d x y z w", real=True)
    v = load("transposed-conv").solve().values
    ren = {"k11": a, "k12": b, "k21": c, "k22": d, "x11": x, "x12": y, "x21": z, "x22": w}
    ours = [[sympy.sympify(e, locals=ren) for e in row] for row in v["matrix"]]
    written = [[a, 0, 0, 0], [b, a, 0, 0], [0, b, 0, 0], [c, 0, a, 0], [d, c, b, a], [0, d, 0, b],
               [0, 0, d, 0], [0, 0, 0, d]]
    assert len(written) == 8 and len(ours) == 9
    assert ours[:6] == written[:6]
    assert ours[6:] == [[0, 0, c, 0], [0, 0, d, c], [0, 0, 0, d]]
    assert written[6] != ours[6] and written[7] != ours[7]
    written_result = [[a * x, b * x + a * y, b * y], [c * x + a * z, d * x + c * y + b * z + a * w, d * y + b * w],
                      [c * z, d * z + c * w, d * w]]
    ours_result = [[sympy.sympify(e, locals=ren) for e in row] for row in v["result"]]
    assert all(sympy.expand(p - q) == 0 for r1, r2 in zip(ours_result, written_result) for p, q in zip(r1, r2))


def test_checks_pass():
    sol = load("transposed-conv").solve()
    assert len(sol.checks) == 3 and all(c["passed"] for c in sol.checks)


@pytest.mark.parametrize("values", [{"input_size": 0}, {"stride": 1.5}, {"padding": 20}, {"matrix_input_size": 9},
                                    {"kernel": 3}])
def test_bad_values_are_refused(values):
    with pytest.raises(SpecError):
        load("transposed-conv").solve(values)
