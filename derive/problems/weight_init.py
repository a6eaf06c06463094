"""Zero, constant and random initialisation of a 2-2-1 tanh/sigmoid classifier.

The symmetry argument is made by the engine: the network is a spec like any
user's, derived once; with the two hidden units' weights set equal, their
gradients are the same expressions, so every update keeps them equal.  The
experiment trains the same network in numpy from each initialisation.

>>> sol = load_problem().solve()
>>> sol.values["symmetric_gradients_equal"], sol.values["zero_init_gradients_zero"]
(True, True)
"""
from __future__ import annotations

import numpy as np
import sympy

from derive.typeset import blocks as B
from derive.typeset.fmt import num_tex, num_text
from derive.problems.base import BlocksSolution, GraphProblem, Problem
from derive.problems._given import Given
from derive.problems._show import num_math

SPEC = {
    "title": "2-2-1 tanh/sigmoid binary classifier",
    "inputs": {"x1": 0.5, "x2": -1},
    "targets": {"y": 1},
    "parameters": {"w1_11": 1, "w1_12": 1, "w1_21": 1, "w1_22": 1, "b1_1": 1, "b1_2": 1,
                   "w2_11": 1, "w2_12": 1, "b2_1": 1},
    "forward": {"z1": "w1_11*x1 + w1_12*x2 + b1_1",
                "z2": "w1_21*x1 + w1_22*x2 + b1_2",
                "h1": "tanh(z1)",
                "h2": "tanh(z2)",
                "u": "w2_11*h1 + w2_12*h2 + b2_1",
                "o": "sigmoid(u)"},
    "loss": "-(y*log(o) + (1 - y)*log(1 - o))",
    "optimizer": {"rule": "sgd", "lr": 0.5},
}
#: hidden unit 2's parameter -> its counterpart in hidden unit 1
MIRROR = {"w1_21": "w1_11", "w1_22": "w1_12", "b1_2": "b1_1", "w2_12": "w2_11"}
PARAMS = list(SPEC["parameters"])

_graph_problem: GraphProblem | None = None


def graph_problem() -> GraphProblem:
    """The network as a spec through the same machinery as a user's file (built once)."""
    global _graph_problem
    if _graph_problem is None:
        _graph_problem = GraphProblem(SPEC, "weight-init network", id="weight-init-network")
    return _graph_problem


# -- the experiment, in plain numpy (independent of the engine) ----------------------------

def band_data(n: int, seed: int):
    """Points uniform in [-2, 2]^2, class 1 inside the band |x1 - x2| < 1:
    one tanh unit gives one straight boundary, a band needs two."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(-2.0, 2.0, (n, 2))
    return X, (np.abs(X[:, 0] - X[:, 1]) < 1.0).astype(float)


def initial_params(kind: str, rng) -> dict:
    if kind == "random":
        return {"W1": rng.standard_normal((2, 2)), "b1": rng.standard_normal(2),
                "W2": rng.standard_normal(2), "b2": rng.standard_normal(1)}
    c = {"zeros": 0.0, "ones": 1.0}[kind]
    return {"W1": np.full((2, 2), c), "b1": np.full(2, c), "W2": np.full(2, c), "b2": np.full(1, c)}


def stack(runs: list) -> dict:
    """Several runs' parameters with a leading run axis, trained side by side."""
    return {k: np.stack([r[k] for r in runs]) for k in runs[0]}


def loss_and_grads(params: dict, X, y):
    """Mean binary cross-entropy of each run and its gradients by hand-written
    backprop. Arrays carry a leading run axis r; W1[r, i, j] is the weight into
    hidden unit i from input j (w1_ij)."""
    Z = X @ params["W1"].transpose(0, 2, 1) + params["b1"][:, None, :]      # (r, n, 2)
    H = np.tanh(Z)
    U = (H @ params["W2"][:, :, None])[..., 0] + params["b2"]               # (r, n)
    O = 1.0 / (1.0 + np.exp(-U))
    loss = -np.mean(y * np.log(O) + (1 - y) * np.log(1 - O), axis=1)
    dU = (O - y) / len(y)                       # d loss / d u for sigmoid + cross-entropy
    dH = dU[:, :, None] * params["W2"][:, None, :] * (1 - H ** 2)
    grads = {"W1": dH.transpose(0, 2, 1) @ X, "b1": dH.sum(axis=1),
             "W2": (H.transpose(0, 2, 1) @ dU[:, :, None])[..., 0], "b2": dU.sum(axis=1, keepdims=True)}
    return loss, grads, O


def train(params: dict, X, y, lr: float, epochs: int):
    """Full-batch gradient descent of every run; losses[epoch, run] before each epoch."""
    params = {k: v.copy() for k, v in params.items()}
    losses = np.empty((epochs, params["W1"].shape[0]))
    for t in range(epochs):
        losses[t], grads, _ = loss_and_grads(params, X, y)
        for k in params:
            params[k] = params[k] - lr * grads[k]
    _, _, O = loss_and_grads(params, X, y)
    return params, losses, np.mean((O > 0.5) == (y > 0.5), axis=1)


def _tidy_output(chain):
    """A gradient with the cross-entropy and the sigmoid's derivative multiplied
    out, as a person writes it: ``o (1 - o) ((1 - y)/(1 - o) - y/o)`` is ``o - y``.
    Only the factors in the output ``o`` and the target ``y`` are cancelled (a
    fixed, small product of the built-in: bounded).

    >>> o, y, w, h = sympy.symbols("o y w h")
    >>> _tidy_output(o * w * (1 - h**2) * (1 - o) * ((1 - y) / (1 - o) - y / o))
    w*(1 - h**2)*(o - y)
    """
    if not isinstance(chain, sympy.Mul):
        return chain
    out = {s for s in chain.free_symbols if s.name in ("o", "y")}
    if len(out) != 2:
        return chain
    loss = [f for f in chain.args if f.free_symbols and f.free_symbols <= out]
    rest = [f for f in chain.args if f not in loss]
    return sympy.Mul(*rest) * sympy.cancel(sympy.Mul(*loss))


def _flat(params: dict, r: int = 0) -> dict:
    W1, b1, W2, b2 = params["W1"][r], params["b1"][r], params["W2"][r], params["b2"][r]
    return {"w1_11": W1[0, 0], "w1_12": W1[0, 1], "w1_21": W1[1, 0], "w1_22": W1[1, 1],
            "b1_1": b1[0], "b1_2": b1[1], "w2_11": W2[0], "w2_12": W2[1], "b2_1": b2[0]}


# -- the problem ---------------------------------------------------------------------------------

class WeightInit(Problem):
    id = "weight-init"
    title = "Initialisation: all zeros, all ones, random"
    source = "seed 002, Q1.4"
    order = (2, 1, 4)
    question = B.Tex(
        "A small network for binary classification (two inputs, two $\\tanh$ hidden units, one sigmoid "
        "output, as in Q1.3, here with biases and the cross-entropy loss) is initialised with all weights "
        "zero, all weights one, or random weights. Which may do well in practice, and why? Show it with a "
        "small experiment.")

    DEFAULTS = {"epochs": 2000, "lr": 1, "n_samples": 200, "data_seed": 0, "init_seed": 1, "random_runs": 3}

    def solve(self, values=None, steps: int = 1) -> BlocksSolution:
        given = Given(values, self.DEFAULTS)
        epochs = given.integer("epochs", lo=1, hi=5000)
        lr = given.number("lr", lo=0, hi=100, strict_lo=True)
        n = given.integer("n_samples", lo=4, hi=2000)
        data_seed = given.integer("data_seed", lo=0, hi=2**32 - 1)
        init_seed = given.integer("init_seed", lo=0, hi=2**32 - 1)
        runs = given.integer("random_runs", lo=1, hi=5)

        gp = graph_problem()
        sym = self._symmetry(gp)
        at = {kind: gp.solve({p: c for p in PARAMS}, steps=3) for kind, c in (("zeros", 0), ("ones", 1))}

        X, y = band_data(n, data_seed)
        rng = np.random.default_rng(init_seed)
        inits = [("zeros", initial_params("zeros", rng)), ("ones", initial_params("ones", rng))]
        inits += [(f"random {k + 1}", initial_params("random", rng)) for k in range(runs)]
        start = stack([p0 for _, p0 in inits])
        final, losses, acc = train(start, X, y, float(lr), epochs)
        results = []
        for r, (label, p0) in enumerate(inits):
            p = {k: v[r] for k, v in final.items()}
            results.append((label, p0, p, [float(v) for v in losses[:, r]], float(acc[r])))

        checks = self._checks(gp, inits, at)
        majority = float(max(y.mean(), 1 - y.mean()))
        values_out = {
            "symmetric_gradients_equal": sym["all_equal"],
            "zero_init_gradients_zero": all(at["zeros"].gradients[p] == 0 for p in PARAMS if p != "b2_1"),
            "majority_rate": majority,
        }
        for label, _, p, losses, acc in results:
            key = label.replace(" ", "_")
            values_out[f"accuracy_{key}"] = acc
            values_out[f"final_loss_{key}"] = losses[-1]
            values_out[f"hidden_units_gap_{key}"] = float(np.max(np.abs(p["W1"][0] - p["W1"][1])))
        blocks = self._blocks(gp, sym, at, results, majority, n, epochs, lr, data_seed, init_seed, checks)
        return BlocksSolution(self, values_out, blocks, checks)

    @staticmethod
    def _outcome(results, majority) -> str:
        """What the runs show, read off the numbers (not assumed)."""
        parts = []
        for label, _, p, _, acc in results:
            gap = float(np.max(np.abs(p["W1"][0] - p["W1"][1])))
            if label == "zeros":
                frozen = float(np.max(np.abs(p["W1"]))) == 0.0 and float(np.max(np.abs(p["W2"]))) == 0.0
                parts.append(f"From zeros the hidden and output weights {'never moved (still all 0)' if frozen else 'moved'}"
                             f" and the accuracy is {_pct(acc)}"
                             + (", the share of the larger class: the network predicts one class everywhere."
                                if acc == majority else "."))
            elif label == "ones":
                parts.append(f"From ones the two rows of the hidden weights {'are still identical' if gap == 0 else f'differ by {_pct(gap)}'}"
                             f" after training: one feature, used twice, accuracy {_pct(acc)}.")
        rand = [(label, acc) for label, _, _, _, acc in results if label.startswith("random")]
        best = max(rand, key=lambda r: r[1])
        parts.append("The random starts reach " + ", ".join(f"{_pct(a)} ({lbl})" for lbl, a in rand)
                     + f"; the best, {_pct(best[1])}, is "
                     + ("above" if best[1] > max(r[4] for r in results if not r[0].startswith("random")) else "not above")
                     + " both constant starts. Random initialisation is the one that can do well; a run can still "
                       "settle in a poor local minimum, which is why one reports several seeds.")
        return " ".join(parts)

    # -- the symmetry argument, by the engine ----------------------------------------------
    def _symmetry(self, gp) -> dict:
        g, d = gp.graph, gp.derivation
        tie = {g.symbol(a): g.symbol(b) for a, b in MIRROR.items()}
        pairs = []
        for second, first in MIRROR.items():
            e1 = d.expanded(first).xreplace(tie)
            e2 = d.expanded(second).xreplace(tie)
            diff = e1 - e2
            if diff != 0:
                diff = sympy.expand(diff)   # small, fixed expressions: bounded
            pairs.append((first, second, diff == 0))
        return {"pairs": pairs, "all_equal": all(ok for *_, ok in pairs)}

    def _checks(self, gp, inits, at) -> list:
        """The experiment's hand-written numpy gradient against the engine's, at the
        spec's example point, for each initialisation (a batch of one)."""
        leaves = gp.spec.values
        X = np.array([[float(leaves["x1"]), float(leaves["x2"])]])
        y = np.array([float(leaves["y"])])
        worst = 0.0
        for label, p0 in inits:
            _, grads, _ = loss_and_grads(stack([p0]), X, y)
            ours = _flat(grads)
            sol = at[label] if label in at else gp.solve({k: repr(float(v)) for k, v in _flat(stack([p0])).items()})
            worst = max(worst, max(abs(float(sol.gradients[k]) - float(ours[k])) for k in PARAMS))
        checks = [{"method": "numpy-backprop-vs-engine", "quantity": "gradients at each initialisation",
                   "max_abs_err": float(worst), "passed": bool(worst < 1e-9)}]
        checks += [dict(c, quantity="engine, ones init") for c in at["ones"].checks]
        return checks

    def _blocks(self, gp, sym, at, results, majority, n, epochs, lr, data_seed, init_seed, checks) -> list:
        g, d = gp.graph, gp.derivation
        names_tex = g.latex_names()
        out = [B.Heading("Why constant initialisations fail: symmetry")]
        out.append(B.prose(
            "The network: ", B.Math(r"z_i = w^{1}_{i1} x_1 + w^{1}_{i2} x_2 + b^{1}_{i}", "z_i = w1_i1 x1 + w1_i2 x2 + b1_i"),
            ", ", B.Math(r"h_i = \tanh z_i", "h_i = tanh(z_i)"), ", ",
            B.Math(r"o = \sigma(w^{2}_{11} h_1 + w^{2}_{12} h_2 + b^{2}_{1})", "o = sigmoid(w2_11 h1 + w2_12 h2 + b2_1)"),
            ", ", B.Math(r"L = -\left(y \log o + (1 - y) \log (1 - o)\right)", "L = -(y log o + (1 - y) log(1 - o))"),
            ". The gradient of each weight of hidden unit 1 and of its counterpart in hidden unit 2, "
            "derived symbolically:"))
        rows = []
        for first, second, _ in sym["pairs"]:
            for p in (first, second):
                chain = _tidy_output(d.in_forward_names(p))
                rows.append(B.EqRow(B.Math(rf"\frac{{\partial L}}{{\partial {g.nodes[p].latex}}}", f"dL/d{p}"),
                                    (B.Math(sympy.latex(chain, symbol_names=names_tex), sympy.sstr(chain)),)))
        out.append(B.Equations(tuple(rows)))
        ties = ", ".join(f"${g.nodes[b].latex} = {g.nodes[a].latex}$" if a in g.nodes and b in g.nodes
                         else f"{b} = {a}" for a, b in MIRROR.items())
        verdict = "identical" if sym["all_equal"] else "NOT identical"
        out.append(B.tex_prose(
            f"If the two units start equal ({ties}), then $z_1 = z_2$ and $h_1 = h_2$ for every input, and the "
            f"gradients above, expanded in the givens and with the ties substituted, are {verdict} "
            "expressions (each difference simplifies to 0). So one gradient step changes both units by "
            "the same amount and they are equal again; by induction they stay equal for ever, for every "
            "example and any element-wise optimiser. The two hidden units compute the same feature: the "
            "network is no better than one with a single hidden unit. All ones is such a start."))
        zeros = at["zeros"]
        grow = []
        for p in PARAMS:
            grow.append((B.Math(g.nodes[p].latex, p), num_math(zeros.gradients[p]), num_math(at["ones"].gradients[p])))
        out.append(B.Table(("parameter", "gradient at all zeros", "gradient at all ones"), tuple(grow),
                           caption=B.Tex("Gradients at the example point "
                                         + ", ".join(f"${g.nodes[k].latex if k in g.nodes else k} = {num_tex(v)}$"
                                                     for k, v in gp.spec.values.items()
                                                     if k in ("x1", "x2", "y"))),
                           align="lrr"))
        out.append(B.tex_prose(
            "All zeros is worse: $h_1 = h_2 = \\tanh(0) = 0$ and the output weights are 0, so every hidden-layer "
            "gradient carries a factor $w^2_{1j} = 0$ and every output-weight gradient a factor $h_j = 0$; only "
            "the output "
            "bias moves. The hidden layer never leaves 0 and the network can only learn the class "
            "frequency."))
        traj = at["ones"].trajectory.params
        trows = []
        for k, params in enumerate(traj):
            trows.append((str(k),) + tuple(num_math(params[p]) for p in ("w1_11", "w1_21", "w1_12", "w1_22")))
        out.append(B.Table(("step",) + tuple(B.Math(g.nodes[p].latex, p) for p in ("w1_11", "w1_21", "w1_12", "w1_22")),
                           tuple(trows),
                           caption=B.Tex(f"{len(traj) - 1} steps of gradient descent "
                                         f"($\\eta = {num_tex(at['ones'].optimizer.lr)}$) from all ones on the example" + (": the units stay equal" if all(
                                       q["w1_11"] == q["w1_21"] and q["w1_12"] == q["w1_22"] for q in traj) else "")),
                           align="rrrrr"))
        out.append(B.prose("Random initialisation breaks the tie: the units start different, receive different "
                           "gradients and can learn different features (its scale matters too: too large "
                           "saturates tanh, which is what Xavier/He scaling addresses)."))

        out.append(B.Heading("Experiment"))
        out.append(B.tex_prose(
            f"Data: {n} points uniform in $[-2, 2] \\times [-2, 2]$ (numpy seed {data_seed}), class 1 inside the "
            f"band $|x_1 - x_2| < 1$; the larger class is {num_text(sympy.Float(majority, 15))} of the points. A straight "
            "boundary cannot separate a band; two different hidden units can. The network above is trained "
            f"by full-batch gradient descent on the mean cross-entropy, learning rate {num_text(lr)}, "
            f"{epochs} epochs, from all zeros, all ones (biases too) and standard-normal random weights "
            f"(numpy seed {init_seed}, one draw per run)."))
        rows = []
        for label, _, p, losses, acc in results:
            gap = float(np.max(np.abs(p["W1"][0] - p["W1"][1])))
            rows.append((label, num_math(sympy.Float(losses[0], 15)), num_math(sympy.Float(losses[-1], 15)),
                         num_math(sympy.Float(acc, 15)), num_math(sympy.Float(gap, 15))))
        out.append(B.Table(("initialisation", "loss at start", "final loss", "training accuracy",
                            B.Tex("largest $|w^1_{1j} - w^1_{2j}|$")), tuple(rows), align="lrrrr"))
        every = max(1, epochs // 100)
        series = [{"label": label, "x": list(range(0, epochs, every)), "y": [float(v) for v in losses[::every]]}
                  for label, _, _, losses, _ in results]
        out.append(B.Figure("plot", {"xlabel": "epoch", "ylabel": "training loss (cross-entropy)", "logy": True,
                                     "series": series},
                            caption="Training loss from each initialisation", label="fig:weight-init"))
        out.append(B.prose(self._outcome(results, majority)))
        out.append(B.Heading("Verification"))
        out.append(B.prose("The experiment's hand-written numpy gradients against the symbolic ones at the "
                           "example point for every initialisation, and the symbolic gradients' own checks:"))
        out.append(B.Checks(tuple(checks)))
        return out


def _pct(v: float) -> str:
    return num_text(sympy.Float(v, 15))


def load_problem() -> WeightInit:
    return PROBLEMS[0]


PROBLEMS = [WeightInit()]
