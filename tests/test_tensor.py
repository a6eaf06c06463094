"""derive.engine.tensor: names, lowering to scalar nodes, groups in JSON, block graph, Jacobians."""
import numpy as np
import pytest
import sympy

from derive.engine.backprop import derive, evaluate
from derive.problems import load
from derive.engine.spec import SpecError
from derive.engine.tensor import TensorGraph, apply, block_edges, block_paths, component_latex, component_name, jacobian, stack, tensor, total


def test_names_are_row_major_one_based_and_valid():
    assert component_name("W", (1, 0)) == "W_2_1"
    assert component_latex(r"c_{\text{prev}}", (1,)) == r"c_{\text{prev},2}"
    tg = TensorGraph()
    W = tg.parameter("W", (2, 3))
    assert W.names == ("W_1_1", "W_1_2", "W_1_3", "W_2_1", "W_2_2", "W_2_3")
    assert tg.graph.groups["W"].shape == (2, 3)
    h0 = tg.input("H0", (2,), prefix="H_0", latex="H_{0}")
    assert h0.names == ("H_0_1", "H_0_2")
    assert tg.graph.nodes["H_0_2"].latex == "H_{0,2}"


def test_matvec_stack_and_activation_lower_to_scalar_nodes():
    tg = TensorGraph()
    W = tg.parameter("W", (2, 3))
    a = tg.input("a", (1,))
    x = tg.input("x", (2,))
    z = tg.define("z", apply("sigmoid", W @ stack(a, x)))
    w = [[tg.graph.symbol(f"W_{i}_{j}") for j in (1, 2, 3)] for i in (1, 2)]
    col = [tg.graph.symbol("a_1"), tg.graph.symbol("x_1"), tg.graph.symbol("x_2")]
    expected = sympy.Add(*[w[1][j] * col[j] for j in range(3)])
    assert sympy.simplify(tg.graph.nodes[z.names[1]].expr.args[0] - expected) == 0
    assert type(tg.graph.nodes["z_1"].expr).__name__ == "sigmoid"


def test_shape_errors_are_graph_errors():
    from derive.engine.graph import GraphError

    with pytest.raises(GraphError):
        tensor([[1, 2]]) @ tensor([1, 2, 3])
    with pytest.raises(GraphError):
        tensor([1, 2]) + tensor([1, 2, 3])


def test_softmax_has_a_normaliser_node_and_matches_numpy():
    tg = TensorGraph()
    e = tg.input("e", (3,))
    alpha = tg.softmax("alpha", e, normaliser="S")
    y = tg.target("y", (3,))
    tg.loss("L", total((alpha - y) * (alpha - y)) / 2)
    vals = {"e_1": sympy.Rational(1, 2), "e_2": -1, "e_3": 2, "y_1": 0, "y_2": 1, "y_3": 0}
    fwd = tg.graph.forward(vals)
    ev_np = np.exp([0.5, -1.0, 2.0])
    assert np.allclose([float(fwd[n]) for n in alpha.names], ev_np / ev_np.sum(), atol=1e-15)
    J = np.array(jacobian(tg, fwd, "alpha", "e", hidden=["S"]))
    a = ev_np / ev_np.sum()
    assert np.allclose(J, np.diag(a) - np.outer(a, a), atol=1e-14)


def test_block_graph_of_a_tiny_rnn_looks_through_preactivations():
    tg = TensorGraph()
    W = tg.parameter("W", (2, 2))
    h = tg.input("H0", (2,), prefix="H_0")
    errs = []
    for t in (1, 2, 3):
        z = tg.define(f"Z_{t}", W @ h, group=False)
        h = tg.define(f"H_{t}", apply("tanh", z), group=False)
        errs.append(tg.define(f"E_{t}", total(h * h), group=False).exprs[0])
    tg.loss("E", sympy.Add(*errs))
    edges = block_edges(tg, hidden=["Z_1", "Z_2", "Z_3"])
    assert edges["W"] == ["H_1", "H_2", "H_3"]
    assert sorted(edges["H_1"]) == ["E_1", "H_2"]
    paths = block_paths(edges, "W", "E_3")
    assert sorted(len(p) for p in paths) == [3, 4, 5]     # entering at k = 3, 2, 1


def test_jacobian_agrees_with_finite_differences():
    tg = TensorGraph()
    W = tg.parameter("W", (2, 2))
    x = tg.input("x", (2,))
    h = tg.define("h", apply("tanh", W @ x))
    tg.loss("L", total(h))
    Wv = np.array([[0.3, -0.2], [0.5, 0.1]])
    xv = np.array([0.7, -0.4])
    vals = {"W_1_1": "0.3", "W_1_2": "-0.2", "W_2_1": "0.5", "W_2_2": "0.1", "x_1": "0.7", "x_2": "-0.4"}
    from derive.engine.parse import number

    fwd = tg.graph.forward({k: number(v) for k, v in vals.items()})
    J = np.array(jacobian(tg, fwd, "h", "x"))
    eps = 1e-6
    fd = np.stack([(np.tanh(Wv @ (xv + eps * e)) - np.tanh(Wv @ (xv - eps * e))) / (2 * eps)
                   for e in np.eye(2)], axis=1)
    assert np.allclose(J, fd, atol=1e-9)


def test_json_nests_parameter_gradients_and_input_adjoints():
    data = load("bahdanau-attention").solve().to_json()
    assert np.shape(data["gradients"]["W"]["value"]) == (2, 2)
    assert np.shape(data["gradients"]["v"]["value"]) == (2,)
    assert np.shape(data["input_gradients"]["h"]) == (2, 3)
    assert np.shape(data["values"]["h"]) == (2, 3)
    assert data["dims"] == {"a": 2, "m": 2, "p": 2, "Tx": 3}


def test_values_are_checked():
    p = load("rnn-bptt")
    # sizes follow the values (issue 13): a U of 1 x 2 means n = 1, so a 2 x 2 W disagrees
    with pytest.raises(SpecError, match="values.W: is 2 x 2, so n = 2, but U has n = 1"):
        p.solve({"U": [[1, 2]], "W": [[1, 2], [3, 4]]})
    with pytest.raises(SpecError, match="values.U"):
        p.solve({"U": [[[1, 2]]]})
    with pytest.raises(SpecError, match="values.T"):
        p.solve({"T": "0"})
    with pytest.raises(SpecError, match="unknown name"):
        p.solve({"nope": 1})
    with pytest.raises(SpecError, match="values.I"):
        p.solve({"T": 4, "I": [[0, 0]] * 3})       # I must be T x d
    sol = p.solve({"U_1_2": "0.7", "lr": "0.5"})
    assert sol.leaves["U_1_2"] == sympy.Rational(7, 10) and sol.optimizer.lr == sympy.Rational(1, 2)


def test_derivation_of_a_tensor_graph_is_evaluated_exactly_where_possible():
    tg = TensorGraph()
    W = tg.parameter("W", (1, 2))
    x = tg.input("x", (2,))
    o = tg.define("o", W @ x)
    tg.loss("L", total(o * o) / 2)
    d = derive(tg.graph)
    ev = evaluate(d, tg.graph.forward({"W_1_1": 1, "W_1_2": 2, "x_1": 3, "x_2": 4}))
    assert ev.adjoint["W_1_2"] == 11 * 4        # dL/dW = o x^T with o = 11
