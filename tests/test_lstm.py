"""lstm-cell against an independent numpy LSTM (forward and hand-written backward)."""
import numpy as np

from derive.problems import load


def sig(x):
    return 1 / (1 + np.exp(-x))


def numpy_lstm(P, x, h_prev, c_prev, y):
    v = np.concatenate([h_prev, x])
    i = sig(P["W_i"] @ v + P["b_i"])
    f = sig(P["W_f"] @ v + P["b_f"])
    o = sig(P["W_o"] @ v + P["b_o"])
    g = np.tanh(P["W_c"] @ v + P["b_c"])
    c = f * c_prev + i * g
    h = o * np.tanh(c)
    return 0.5 * np.sum((h - y) ** 2), (v, i, f, o, g, c, h)


def numpy_lstm_grads(P, x, h_prev, c_prev, y):
    _, (v, i, f, o, g, c, h) = numpy_lstm(P, x, h_prev, c_prev, y)
    dh = h - y
    dc = dh * o * (1 - np.tanh(c) ** 2)
    dz = {"i": dc * g * i * (1 - i), "f": dc * c_prev * f * (1 - f),
          "o": dh * np.tanh(c) * o * (1 - o), "c": dc * i * (1 - g ** 2)}
    out = {}
    for q in "ifoc":
        out[f"W_{q}"] = np.outer(dz[q], v)
        out[f"b_{q}"] = dz[q]
    out["c_prev"] = dc * f
    return out


def test_gradients_match_independent_numpy_lstm():
    sol = load("lstm-cell").solve()
    val = lambda n: np.array([float(v) for v in sol.value_of(n)])  # noqa: E731
    P = {f"W_{q}": val(f"W_{q}").reshape(2, 4) for q in "ifoc"}
    P.update({f"b_{q}": val(f"b_{q}") for q in "ifoc"})
    args = (val("x"), val("h_prev"), val("c_prev"), val("y"))
    loss, _ = numpy_lstm(P, *args)
    assert abs(loss - float(sol.forward["L"])) < 1e-12
    ref = numpy_lstm_grads(P, *args)
    for name, g in ref.items():
        got = np.array([float(v) for v in sol.adjoint_of(name)]).reshape(g.shape)
        assert np.allclose(got, g, atol=1e-12), name
    # finite differences on one weight matrix, independently of both
    eps = 1e-6
    for idx in np.ndindex(2, 4):
        Pp = dict(P, W_f=P["W_f"].copy())
        Pm = dict(P, W_f=P["W_f"].copy())
        Pp["W_f"][idx] += eps
        Pm["W_f"][idx] -= eps
        num = (numpy_lstm(Pp, *args)[0] - numpy_lstm(Pm, *args)[0]) / (2 * eps)
        assert abs(num - ref["W_f"][idx]) < 1e-9
    assert all(c["passed"] for c in sol.checks)


def test_parameter_table_counts_and_sizes():
    sol = load("lstm-cell").solve({"n": 3, "d": 1})
    text = sol.to_text()
    assert f"4 n (n + d) + 4 n = {4 * 3 * (3 + 1) + 4 * 3} with n = 3 (hidden), d = 1 (input)" in text
    assert np.shape(sol.to_json()["gradients"]["W_o"]["value"]) == (3, 4)
    assert np.shape(sol.to_json()["input_gradients"]["c_prev"]) == (3,)
    for gate in ("i = sigmoid(W_i [h_prev; x] + b_i)", "g = tanh(W_c [h_prev; x] + b_c)",
                 "c = f * c_prev + i * g", "h = o * tanh(c)"):
        assert gate in text
