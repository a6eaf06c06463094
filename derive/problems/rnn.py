r"""``rnn-bptt`` (seed 000 Q1, seed 000 Q2): backpropagation through time.

H_t = tanh(U I_t + W H_{t-1}), O_t = V H_t, E_t = 1/2 ||O_t - Y_t||^2,
E = sum_t E_t, unrolled for T steps (``--set T=5``; sizes ``d n k`` too).

Default values follow one documented rule for every size (1-based i, j, t):

* U_ij = ((3i + 2j) mod 7 - 3) / 10,  W_ij = ((2i + 3j) mod 5 - 2) / 5,
  V_ij = ((i + 2j) mod 5 - 2) / 4,  H0_i = (-1)^(i+1) / 4;
* I_tj = ((t + j) mod 4 - 1.5) / 2,  Y_tj = ((t + 2j) mod 5 - 2) / 4.

The worked solution gives the general form of every asked gradient (f left
unspecified) read off the unrolled graph as sums over its paths, the
concrete numbers with f = tanh, the textbook matrix form checked against the
component-wise derivation, and the vanishing/exploding study.

>>> from derive.problems import load
>>> sol = load("rnn-bptt").solve({"T": 2})
>>> [c["passed"] for c in sol.checks]
[True, True, True, True, True]
"""
from __future__ import annotations

import re

import numpy as np
import sympy

from derive.typeset import blocks as B
from derive.engine.backprop import derive, evaluate, local_derivative
from derive.grading.judges import FormulaError, judge_paths, looks_like_path_sum, read_formula
from derive.engine.ops import OPS
from derive.engine.tensor import TensorGraph, apply, block_edges, block_paths, jacobian, total
from derive.problems.tensor_problem import Dim, TensorModel, TensorProblem, matrix_math
from derive.problems.vanishing import derivative_sup, vanishing_blocks

R = sympy.Rational
#: tolerance of the matrix-form and path-sum checks (floats against 30-digit values)
TOL = 1e-9
#: the sum over every path of every E_t (quadratic in T) is checked up to this T
PATH_TOTAL_MAX_T = 8


def default_values(T: int, d: int, n: int, k: int) -> dict:
    """The documented rule for the givens (see the module docstring)."""
    return {
        "U": [[R((3 * i + 2 * j) % 7 - 3, 10) for j in range(1, d + 1)] for i in range(1, n + 1)],
        "W": [[R((2 * i + 3 * j) % 5 - 2, 5) for j in range(1, n + 1)] for i in range(1, n + 1)],
        "V": [[R((i + 2 * j) % 5 - 2, 4) for j in range(1, n + 1)] for i in range(1, k + 1)],
        "H0": [R((-1) ** (i + 1), 4) for i in range(1, n + 1)],
        "I": [[R(2 * ((t + j) % 4) - 3, 4) for j in range(1, d + 1)] for t in range(1, T + 1)],
        "Y": [[R((t + 2 * j) % 5 - 2, 4) for j in range(1, k + 1)] for t in range(1, T + 1)],
    }


def unrolled(T: int, d: int, n: int, k: int, loss_step: int | None = None) -> TensorGraph:
    """The RNN unrolled for T steps; the loss is E = sum_t E_t, or E_s alone
    when ``loss_step`` = s (then the graph stops at step s)."""
    steps = T if loss_step is None else loss_step
    loss_name = "E" if loss_step is None else f"E_{loss_step}"
    tg = TensorGraph(f"RNN unrolled over {steps} steps, loss {loss_name}")
    U = tg.parameter("U", (n, d))
    W = tg.parameter("W", (n, n))
    V = tg.parameter("V", (k, n))
    I = tg.input("I", (T, d))
    H = tg.input("H0", (n,), prefix="H_0", latex="H_{0}")
    Y = tg.target("Y", (T, k))
    Zs, Hs, Os, Es = [], [], [], []
    for t in range(1, steps + 1):
        Z = tg.define(f"Z_{t}", U @ I.row(t - 1) + W @ H, group=False)
        H = tg.define(f"H_{t}", apply("tanh", Z), group=False)
        O = tg.define(f"O_{t}", V @ H, group=False)
        diff = O - Y.row(t - 1)
        if loss_step is None or t == loss_step:
            kind = "forward" if loss_step is None else "loss"
            Es.append(tg.define(f"E_{t}", total(diff * diff) / 2, kind=kind, group=False))
        Zs.append(Z), Hs.append(H), Os.append(O)
    if loss_step is None:
        tg.loss("E", sympy.Add(*[e.exprs[0] for e in Es]))
    tg.group("Z", Zs), tg.group("H", Hs), tg.group("O", Os)
    return tg


# ---------------------------------------------------------------------------
# The general form, read off the graph of quantities.

_INDEXED = re.compile(r"([A-Za-z]+)_(\d+)$")


def _split(block: str):
    m = _INDEXED.match(block)
    return (m.group(1), int(m.group(2))) if m else (block, None)


def recurrent_families(edges: dict) -> set:
    """Families of quantities with an edge X_j -> X_(j+1) (H in an RNN)."""
    out = set()
    for a, bs in edges.items():
        fa, ia = _split(a)
        for b in bs:
            fb, ib = _split(b)
            if fa == fb and ia is not None and ib == ia + 1:
                out.add(fa)
    return out


def path_structure(path: list, recurrent: set) -> tuple:
    """A path [P, H_k, H_(k+1), ..., H_top, O_t, E_t] as (family, k, top,
    above) with above = the blocks after the run (ending at the loss); a path
    that enters no recurrent family (V -> O_t -> E_t) has family None."""
    rest = path[1:]
    fam, idx = _split(rest[0])
    if fam not in recurrent or idx is None:
        return None, None, None, tuple(rest)
    j = 0
    while j + 1 < len(rest) and _split(rest[j + 1]) == (fam, idx + j + 1):
        j += 1
    return fam, idx, idx + j, tuple(rest[j + 1:])


def general_form(edges: dict, P: str, loss_block: str) -> dict:
    """The paths from parameter P to ``loss_block``, grouped as a sum over
    the step k where they enter the recurrence: {"paths", "family", "ks",
    "top", "above", "uniform"}."""
    paths = block_paths(edges, P, loss_block)
    if not paths:
        return {"paths": [], "ks": [], "uniform": False}
    structs = [path_structure(p, recurrent_families(edges)) for p in paths]
    ks = sorted(s[1] for s in structs if s[1] is not None)
    uniform = (len({(s[0], s[2], s[3]) for s in structs}) == 1
               and (structs[0][0] is None or ks == list(range(ks[0], ks[-1] + 1))))
    return {"paths": paths, "family": structs[0][0], "ks": ks, "top": structs[0][2],
            "above": structs[0][3], "uniform": uniform}


def _descriptor(form: dict, t: int) -> tuple:
    """What must hold for every t to write one formula with a symbolic t."""
    return (form["family"], form["ks"][0] if form["ks"] else None,
            form["top"] in (None, t), tuple((_split(b)[0], _split(b)[1] in (None, t)) for b in form["above"]))


def _latex_block(b: str, symbolic_t: bool = False) -> str:
    fam, idx = _split(b)
    if idx is None:
        return fam
    return f"{fam}_{{t}}" if symbolic_t else f"{fam}_{{{idx}}}"


def _frac(a: str, b: str) -> str:
    return rf"\frac{{\partial {a}}}{{\partial {b}}}"


def _plain(tex: str) -> str:
    return tex.replace("{", "").replace("}", "")


def form_tex(form: dict, P: str, symbolic_t: bool) -> tuple:
    """(LaTeX, text) of d loss / d P: one product of Jacobians per path,
    paths entering the recurrence at k summed over their range of k."""
    fam = form["family"]
    above = [_latex_block(b, symbolic_t) for b in reversed(form["above"])]   # the loss first
    if fam is None:
        seq = above + [P]
        return (" ".join(_frac(a, b) for a, b in zip(seq, seq[1:])),
                " * ".join(f"d{_plain(a)}/d{_plain(b)}" for a, b in zip(seq, seq[1:])))
    top = "t" if symbolic_t else str(form["top"])
    seq = above + [f"{fam}_{{{top}}}"]
    head_tex = [_frac(a, b) for a, b in zip(seq, seq[1:])]
    head_txt = [f"d{_plain(a)}/d{_plain(b)}" for a, b in zip(seq, seq[1:])]
    lo = form["ks"][0]
    prod_tex = rf"\left(\prod_{{j=k+1}}^{{{top}}} {_frac(f'{fam}_{{j}}', f'{fam}_{{j-1}}')}\right)"
    body = " ".join(head_tex + [prod_tex, _frac(f"{fam}_{{k}}", P)])
    text_body = " * ".join(head_txt + [f"prod_{{j=k+1..{top}}} d{fam}_j/d{fam}_(j-1)", f"d{fam}_k/d{P}"])
    return (rf"\sum_{{k={lo}}}^{{{top}}} {body}", f"sum_{{k={lo}..{top}}} {text_body}")


def path_tex(path: list, loss_tex: str) -> tuple:
    """One path written out as its product of Jacobians (loss first)."""
    seq = [loss_tex] + [_latex_block(b) for b in reversed(path[1:-1])] + [path[0]]
    tex = " ".join(_frac(a, b) for a, b in zip(seq, seq[1:]))
    plain = [s.replace("{", "").replace("}", "") for s in seq]
    return tex, " * ".join(f"d{a}/d{b}" for a, b in zip(plain, plain[1:]))


# ---------------------------------------------------------------------------


def rnn_spec(T: int, d: int, n: int, k: int, loss_step: int | None = None) -> dict:
    """The RNN as vector-spec data (as examples/rnn-bptt.yaml writes it), for
    the matrix engine; the loss is E, or E_s alone when ``loss_step`` = s.
    Values come from the solution (zeros stand in here)."""
    return {
        "parameters": {"U": {"shape": [n, d], "value": 0}, "W": {"shape": [n, n], "value": 0},
                       "V": {"shape": [k, n], "value": 0}},
        "inputs": {"I": {"shape": ["T", d], "value": 0}, "H0": {"shape": [n], "value": 0}},
        "targets": {"Y": {"shape": ["T", k], "value": 0}},
        "unroll": {"T": T, "initial": {"H": "H0"},
                   "equations": {"Z": "U @ I[t] + W @ H[t-1]", "H": "tanh(Z)", "O": "V @ H",
                                 "e": "sum((O - Y[t])**2) / 2"}},
        "loss_name": "E" if loss_step is None else f"E_{loss_step}",
        "loss": "sum(e)" if loss_step is None else f"e[{loss_step}]",
    }


class RNNModel(TensorModel):
    PARAMS = ("W", "U", "V")

    def matrix_data(self) -> dict:
        D = self.dims
        return rnn_spec(D["T"], D["d"], D["n"], D["k"])

    def __init__(self, T, d, n, k):
        super().__init__(unrolled(T, d, n, k), {"T": T, "d": d, "n": n, "k": k})
        self.edges = block_edges(self.tg, hidden=[f"Z_{t}" for t in range(1, T + 1)])
        self._partials: dict = {}

    def partial(self, s: int):
        """The graph and derivation of E_s alone (parts (b), (c))."""
        if s not in self._partials:
            D = self.dims
            tg = unrolled(D["T"], D["d"], D["n"], D["k"], loss_step=s)
            self._partials[s] = (tg, derive(tg.graph))
        return self._partials[s]

    def equations(self):
        f_rule = OPS["tanh"].derivative(sympy.Symbol("z"), sympy.Symbol("y"))
        return [
            B.EqRow(B.Math("Z_{t}", "Z_t"), (B.Math("U I_{t} + W H_{t-1}", "U I_t + W H_(t-1)"),),
                    B.Tex("$t = 1, \\ldots, T$")),
            B.EqRow(B.Math("H_{t}", "H_t"), (B.Math(r"f(Z_{t}) = \tanh(Z_{t})", "f(Z_t) = tanh(Z_t)"),),
                    B.Tex(f"$f'(z) = {sympy.latex(f_rule)}$ with $y = f(z)$")),
            B.EqRow(B.Math("O_{t}", "O_t"), (B.Math("V H_{t}", "V H_t"),)),
            B.EqRow(B.Math("E_{t}", "E_t"), (B.Math(r"\tfrac{1}{2} \lVert O_{t} - Y_{t} \rVert^{2}",
                                                    "1/2 ||O_t - Y_t||^2"),)),
            B.EqRow(B.Math("E", "E"), (B.Math(r"\sum_{t=1}^{T} E_{t}", "sum_{t=1..T} E_t"),)),
        ]

    def notation(self):
        D = self.dims
        return [B.prose(
            "For ", B.Math(r"t = 1, \dots, T", "t = 1..T"), " with ", B.Math(f"T = {D['T']}", f"T = {D['T']}"),
            " and ", B.Math("H_{0}", "H_0"), " given; ", B.Math("I_{t}", "I_t"), " and ", B.Math("Y_{t}", "Y_t"),
            " are row ", B.Math("t", "t"), " of ", B.Math("I", "I"), " and ", B.Math("Y", "Y"),
            " (as column vectors); sizes ", B.Math(f"d = {D['d']}", f"d = {D['d']}"), " (input), ",
            B.Math(f"n = {D['n']}", f"n = {D['n']}"), " (hidden), ", B.Math(f"k = {D['k']}", f"k = {D['k']}"),
            " (output). ", B.Math(r"f = \tanh", "f = tanh"), " acts on each entry, and ",
            B.Math(r"\tanh'(z) = 1 - \tanh^{2}(z)", "tanh'(z) = 1 - tanh(z)**2"), ". The matrices ",
            B.Math("Z, H, O", "Z, H, O"), " hold ", B.Math(r"Z_{t}, H_{t}, O_{t}", "Z_t, H_t, O_t"),
            " as their row ", B.Math("t", "t"), ".")]

    def single_step_form(self, sol, s: int):
        """The matrix-form derivation of E_s alone (the matrix engine, at the
        solution's point)."""
        from derive.engine.matspec import build_matrix_spec
        from derive.problems.matrix_form import MatrixForm
        D = self.dims
        given = {name: arr for name, arr in sol.matrix_form.leaves.items()}
        return MatrixForm(build_matrix_spec(rnn_spec(D["T"], D["d"], D["n"], D["k"], loss_step=s), given))

    def path_contributions(self, sol, P: str, s: int) -> list:
        """dE_s/dP path by path: [(k or None, path, contribution as array)],
        each a product of numeric Jacobians (tensor.jacobian)."""
        tg, fwd = self.tg, sol.forward
        hidden = [f"Z_{t}" for t in range(1, self.dims["T"] + 1)]
        out = []
        O = np.array([float(v) for v in sol.value_of(f"O_{s}")])
        Y = np.array([float(v) for v in sol.value_of("Y")]).reshape(self.dims["T"], self.dims["k"])[s - 1]
        shape = tg.tensors[P].shape
        cache = self.__dict__.setdefault("_jacobians", {})
        if cache.get("for") is not sol:       # Jacobians at this solution's point only
            cache.clear()
            cache["for"] = sol

        def jac(a, b):
            if (a, b) not in cache:
                cache[(a, b)] = np.array(jacobian(tg, fwd, a, b, hidden))
            return cache[(a, b)]

        for path in block_paths(self.edges, P, f"E_{s}"):
            row = (O - Y)[None, :]                    # dE_s/dO_s
            for upper, lower in zip(reversed(path[1:-1]), list(reversed(path[1:-1]))[1:]):
                row = row @ jac(upper, lower)
            row = row @ jac(path[1], P)
            out.append((_split(path[1])[1] if path[1].startswith("H_") else None, path,
                        row.reshape(shape)))
        return out

    # -- checks --------------------------------------------------------------
    def extra_checks(self, sol):
        # the matrix form of E against the components is the generic "matrix-form" check
        checks = []
        perr = 0.0
        for s in self._asked_steps():
            tg_s, d_s = self.partial(s)
            ev = evaluate(d_s, tg_s.graph.forward(sol.leaves))
            mf_s = self.single_step_form(sol, s)
            for p in self.PARAMS:
                comp = np.array([float(ev.adjoint.get(n, 0)) for n in tg_s.tensors[p].names])
                paths = sum(c for _, _, c in self.path_contributions(sol, p, s))
                perr = max(perr, float(np.max(np.abs(np.ravel(paths) - comp))),
                           float(np.max(np.abs(mf_s.gradient(p).ravel() - comp))))
        if self._asked_steps():
            checks.append({"method": "path-sum", "max_abs_err": float(f"{perr:.3g}"), "passed": bool(perr <= TOL),
                           "note": "each step's error gradient as a sum over paths of Jacobian products, against "
                                   "the component-wise derivation of that error alone and the matrix form"})
        if self.dims["T"] > PATH_TOTAL_MAX_T:   # T(T+1)/2 paths per parameter: checked for short T only
            return checks
        # E = sum_t E_t: the totals of the path sums are the gradients of E
        terr = 0.0
        for p in self.PARAMS:
            paths = sum(c for s in range(1, self.dims["T"] + 1) for _, _, c in self.path_contributions(sol, p, s))
            comp = np.array([float(v) for v in sol.adjoint_of(p)])
            terr = max(terr, float(np.max(np.abs(np.ravel(paths) - comp))))
        checks.append({"method": "path-sum-total", "max_abs_err": float(f"{terr:.3g}"),
                       "passed": bool(terr <= TOL)})
        return checks

    def _asked_steps(self) -> list:
        return [s for s in (2, 3) if s <= self.dims["T"]]

    def partial_gradients(self, sol) -> dict:
        """{"E_2": {"W": array...}, ...} from the derivation of E_s alone."""
        out = {}
        for s in self._asked_steps():
            tg_s, d_s = self.partial(s)
            ev = evaluate(d_s, tg_s.graph.forward(sol.leaves))
            out[f"E_{s}"] = {p: [ev.adjoint.get(n, sympy.Integer(0)) for n in tg_s.tensors[p].names]
                             for p in self.PARAMS}
        return out

    def extra_json(self, sol):
        from derive.engine.graph import nest

        parts = self.partial_gradients(sol)
        return {"partial_gradients": {
            f"d{e}/d{p}": nest([float(v) for v in vals], self.tg.tensors[p].shape)
            for e, grads in parts.items() for p, vals in grads.items()},
            # the largest derivative of each activation (the vanishing-gradient part)
            "vanishing": {name: float(derivative_sup(op)["sup"]) for name, op in DERIVATIVE_MAX.items()}}

    # -- worked solution ---------------------------------------------------
    def matrix_blocks(self, sol):
        out = self._general_blocks(sol)
        out += self._partial_blocks(sol)
        out += vanishing_blocks()
        return out

    def _general_blocks(self, sol) -> list:
        T = self.dims["T"]
        out = [B.Heading("General form: sums over the paths of the unrolled graph"),
               B.Figure("unrolled-rnn", {"T": T}, caption=f"The RNN unrolled over {T} time steps"),
               B.prose(B.Tex("Read off the unrolled graph (pre-activations $Z_t$ looked through, so that "),
                       B.Math(r"\frac{\partial H_{j}}{\partial H_{j-1}}", "dH_j/dH_(j-1)"), " and ",
                       B.Math(r"\frac{\partial H_{k}}{\partial W}", "dH_k/dW"),
                       B.Tex(" are the Jacobians of one step, the second holding $H_{k-1}$ fixed). Each term "
                             "below is one path from the parameter to the error; the activation $f$ is left "
                             "unspecified. The index ranges are those of the paths that exist: $H_0$ is given, "
                             "so no path enters the chain before $k = 1$."))]
        g = self.tg.graph
        loss = g.nodes[g.loss]
        ones = all(local_derivative(loss.expr, g.symbol(f"E_{t}"), loss.symbol) == 1 for t in range(1, T + 1))
        rows = []
        for P in self.PARAMS:
            forms = {t: general_form(self.edges, P, f"E_{t}") for t in range(1, T + 1)}
            if all(f["uniform"] for f in forms.values()) and len({_descriptor(f, t) for t, f in forms.items()}) == 1:
                tex_t, txt_t = form_tex(forms[T], P, symbolic_t=True)
                rows.append(B.EqRow(B.Math(_frac("E_{t}", P), f"dE_t/d{P}"), (B.Math(tex_t, txt_t),)))
            total_tex = rf"\sum_{{t=1}}^{{{T}}} \frac{{\partial E}}{{\partial E_{{t}}}} {_frac('E_{t}', P)}"
            total_txt = f"sum_{{t=1..{T}}} dE/dE_t * dE_t/d{P}"
            rhs = [B.Math(total_tex, total_txt)]
            if ones:   # E = sum_t E_t: every dE/dE_t is 1 (the loss node's local derivatives)
                rhs.append(B.Math(rf"\sum_{{t=1}}^{{{T}}} {_frac('E_{t}', P)}", f"sum_{{t=1..{T}}} dE_t/d{P}"))
            rows.append(B.EqRow(B.Math(_frac("E", P), f"dE/d{P}"), tuple(rhs)))
            for s in self._asked_steps():
                tex_s, txt_s = form_tex(forms[s], P, symbolic_t=False)
                terms = [path_tex(p, f"E_{{{s}}}") for p in forms[s]["paths"]]
                rhs = [B.Math(tex_s, txt_s)]
                if len(terms) > 1:
                    rhs.append(B.Math(" + ".join(t[0] for t in terms), " + ".join(t[1] for t in terms)))
                rows.append(B.EqRow(B.Math(_frac(f"E_{{{s}}}", P), f"dE_{s}/d{P}"), tuple(rhs)))
        out.append(B.Equations(tuple(rows)))
        return out

    def _partial_blocks(self, sol) -> list:
        steps = self._asked_steps()
        if not steps:
            return [B.prose(B.Tex(f"With $T = {self.dims['T']}$ there is no $E_2$ or $E_3$ to differentiate."))]
        out = [B.Heading(B.Tex("The errors of single steps: $E_2$ and $E_3$ ($f = \\tanh$, numbers)"))]
        parts = self.partial_gradients(sol)
        rows = []
        for s in steps:
            for P in self.PARAMS:
                shape = self.tg.tensors[P].shape
                rows.append(B.EqRow(B.Math(_frac(f"E_{{{s}}}", P), f"dE_{s}/d{P}"),
                                    (matrix_math(parts[f"E_{s}"][P], shape),)))
        out.append(B.prose(B.Tex("Each from the component-wise derivation of $E_s$ alone; the path sums of the "
                                 "general form and the matrix form ($\\delta$ recursion started at $t = s$ with "
                                 "only $O_s - Y_s$) give the same numbers.")))
        out.append(B.Equations(tuple(rows)))
        s = steps[-1]
        crow = []
        for k, path, c in sorted(self.path_contributions(sol, "W", s), key=lambda x: -(x[0] or 0)):
            tex, txt = path_tex(path, f"E_{{{s}}}")
            crow.append((B.Math(f"k = {k}", f"k = {k}"), B.Math(tex, txt), matrix_math(c.ravel().tolist(), c.shape),
                         f"{float(np.linalg.norm(c)):.4g}"))
        out.append(B.Table(("entry step", "path", B.Tex(f"contribution to $\\partial E_{s}/\\partial W$"),
                            "Frobenius norm"),
                           tuple(crow), align="llrr",
                           caption=B.Tex(f"$\\partial E_{s}/\\partial W$ path by path: the contributions of "
                                         "early steps carry more Jacobian factors")))
        return out


# ---------------------------------------------------------------------------
# Judging hand answers that are not numbers (derive check): the general form
# written as a sum over paths, a vector formula for one step's gradient, the
# largest derivative of an activation.

#: answer names for the largest derivative of an activation (seed 000 Q2:
#: why gradients vanish), and the operation each one is about
DERIVATIVE_MAX = {"sigmoid_derivative_max": "sigmoid", "tanh_derivative_max": "tanh"}
#: a vector formula for dE_s/dP is compared at the problem's point and at
#: this many other points (the givens drawn from FORMULA_SEED), so that a
#: formula cannot pass by matching one set of numbers
FORMULA_OTHER_POINTS = 2
FORMULA_SEED = 20240601
#: quantities dE_t/dP another answer is compared with (to name what it is) up to this T
DIAGNOSE_MAX_T = 8


class _Context:
    """What the judges of one solution share: the formula names, other
    points, and the gradients of every E_t at each point (cached)."""

    def __init__(self, sol):
        self.sol, self.model = sol, sol.model
        self._points = None
        self._grads: dict = {}

    def names(self) -> dict:
        tg, T = self.model.tg, self.model.dims["T"]
        out = {P: tg.tensors[P] for P in RNNModel.PARAMS}
        out["H_0"] = tg.tensors["H0"]
        for t in range(1, T + 1):
            for fam in ("H", "O", "Z"):
                out[f"{fam}_{t}"] = tg.tensors[f"{fam}_{t}"]
            # the target of step t; the seed writes it \hat{O}_t ("ground truth")
            out[f"Y_{t}"] = out[f"Ohat_{t}"] = tg.tensors["Y"].row(t - 1)
            out[f"I_{t}"] = tg.tensors["I"].row(t - 1)
        return out

    def points(self) -> list:
        """The problem's solution and FORMULA_OTHER_POINTS others (same sizes,
        every given drawn as a multiple of 1/10 in [-0.9, 0.9])."""
        if self._points is None:
            from derive.engine.graph import nest
            from derive.engine.tensor import of_kind

            rng = np.random.default_rng(FORMULA_SEED)
            pts = [self.sol]
            for _ in range(FORMULA_OTHER_POINTS):
                vals = {t.name: nest([R(int(rng.integers(-9, 10)), 10) for _ in range(t.size)], t.shape)
                        for t in of_kind(self.model.tg, "input", "target", "parameter")}
                pts.append(self.sol.problem.parent.solve({**self.sol.dims, **vals}))
            self._points = pts
        return self._points

    def gradient(self, sol, s, P) -> np.ndarray:
        """dE_s/dP (dE/dP when s is None) at a solution, as a float array."""
        k = (id(sol), s, P)
        if k not in self._grads:
            if s is None:
                vals = sol.adjoint_of(P)
            else:
                tg_s, d_s = self.model.partial(s)
                ev = evaluate(d_s, tg_s.graph.forward(sol.leaves))
                vals = [ev.adjoint.get(n, 0) for n in tg_s.tensors[P].names]
            self._grads[k] = np.array([float(v) for v in vals]).reshape(self.model.tg.tensors[P].shape)
        return self._grads[k]

    def candidates(self, shape) -> list:
        """(name, s, P) of every gradient of that shape an answer may really be."""
        T = self.model.dims["T"]
        steps = [None] + list(range(1, min(T, DIAGNOSE_MAX_T) + 1))
        return [(_gname(s, P), s, P) for s in steps for P in RNNModel.PARAMS
                if self.model.tg.tensors[P].shape == shape]


def _gname(s, P) -> str:
    return f"dE/d{P}" if s is None else f"dE_{s}/d{P}"


class StepGradient:
    """Judges an answer for dE_s/dP (or dE/dP): a sum over paths as the
    general form writes it (judged against the paths of the unrolled
    graph), a vector formula over the problem's names (O_2, Y_2 or
    hat O_2 (written \\hat{O}_2), H_2, I_2, U, W, V; evaluated at several points), or the
    numbers.  dE/dP takes only path sums here (numbers and formulas for it
    go to the answer key)."""

    def __init__(self, ctx: _Context, s, P):
        self.ctx, self.s, self.P = ctx, s, P

    @property
    def loss(self) -> str:
        return "E" if self.s is None else f"E_{self.s}"

    @property
    def form(self) -> str:
        """derive's general form (text), read off the unrolled graph."""
        model = self.ctx.model
        if self.s is None:
            return f"sum_{{t=1..{model.dims['T']}}} dE/dE_t * dE_t/d{self.P}"
        return form_tex(general_form(model.edges, self.P, self.loss), self.P, symbolic_t=False)[1]

    @property
    def expected(self):
        from derive.engine.graph import nest

        v = self.ctx.gradient(self.ctx.sol, self.s, self.P)
        return nest([float(x) for x in v.ravel()], v.shape)

    def accepts(self, text) -> bool:
        return self.s is not None or looks_like_path_sum(text)

    def judge(self, text):
        if looks_like_path_sum(text):
            return self._paths(text)
        if isinstance(text, list):
            from derive.grading.verdicts import RTOL, ATOL, _judge_value

            values = {name: self.ctx.gradient(self.ctx.sol, s, P).tolist()
                      for name, s, P in self.ctx.candidates(self.ctx.model.tg.tensors[self.P].shape)}
            item = _judge_value(_gname(self.s, self.P), text, self.expected, values, RTOL, ATOL)
            return item["verdict"], item["message"]
        return self._formula(text)

    # -- a sum over paths ------------------------------------------------
    def _paths(self, text):
        model, sol = self.ctx.model, self.ctx.sol
        T = model.dims["T"]
        v = judge_paths(text, model.edges, self.P, self.loss, recurrent_families(model.edges),
                        {"H0", "I", "Y"}, {f"E_{t}": "E" for t in range(1, T + 1)})
        extra = {"form": self.form, "expected": self.form, "paths": v.paths}
        msg = v.message
        if v.verdict == "incorrect" and v.answer is not None:
            contrib = {}
            for t in range(1, T + 1):
                if self.s in (None, t):
                    for _k, path, c in model.path_contributions(sol, self.P, t):
                        contrib[tuple(path) + (("E",) if self.s is None else ())] = c
            shape = model.tg.tensors[self.P].shape
            written = sum((contrib[p] * n for p, n in v.answer.items()), np.zeros(shape))
            right = self.ctx.gradient(sol, self.s, self.P)
            msg += (f"; with f = tanh at the problem's values the sum as written is {_mtext(written)}, "
                    f"{_gname(self.s, self.P)} is {_mtext(right)}")
        return v.verdict, msg, extra

    # -- a vector formula ----------------------------------------------
    def _formula(self, text):
        from derive.grading.verdicts import RTOL, ATOL

        shape = self.ctx.model.tg.tensors[self.P].shape
        name = _gname(self.s, self.P)
        try:
            t = read_formula(text, self.ctx.names(), shape)
        except FormulaError as exc:
            return "unparseable", str(exc)
        if t.shape != shape:
            return "incorrect", f"a {' x '.join(map(str, t.shape)) or 'scalar'} formula; {name} is " \
                                f"{' x '.join(map(str, shape))}"
        pts = self.ctx.points()
        g = self.ctx.model.tg.graph
        mine = []
        for sol in pts:
            subs = {g.nodes[n].symbol: v for n, v in sol.forward.items()}
            mine.append(np.array([float(e.xreplace(subs)) for e in t.exprs]).reshape(shape))

        def same(s, P):
            return all(np.allclose(m, self.ctx.gradient(sol, s, P), rtol=RTOL, atol=ATOL)
                       for m, sol in zip(mine, pts))

        right = self.ctx.gradient(pts[0], self.s, self.P)
        extra = {"form": _mtext(right)}
        if same(self.s, self.P):
            return "correct", "", extra
        here = np.allclose(mine[0], right, rtol=RTOL, atol=ATOL)
        msg = (f"it gives {name} at the problem's point but not at {len(pts) - 1} other points" if here
               else f"at the problem's point it gives {_mtext(mine[0])}")
        others = [n for n, s, P in self.ctx.candidates(shape) if n != name and same(s, P)]
        if others:
            msg = (f"this is {others[0]}, not {name} (equal to {others[0]} at the problem's point and at "
                   f"{len(pts) - 1} other points); {msg}")
        elif all(np.allclose(-m, self.ctx.gradient(sol, self.s, self.P), rtol=RTOL, atol=ATOL)
                 for m, sol in zip(mine, pts)):
            msg = f"sign error: this is minus {name}; {msg}"
        return "incorrect", msg, extra


def _mtext(a: np.ndarray) -> str:
    return matrix_math([sympy.Float(float(x), 30) for x in a.ravel()], a.shape).text


class DerivativeMax:
    """Judges a number given for the largest derivative of an activation
    (sigmoid_derivative_max, tanh_derivative_max), computed from the
    operation table's derivative rule (:func:`derive.problems.vanishing.derivative_sup`)."""

    def __init__(self, name: str, op: str):
        self.name, self.op = name, op

    @property
    def expected(self) -> float:
        return float(derivative_sup(self.op)["sup"])

    @property
    def form(self) -> str:
        return str(derivative_sup(self.op)["sup"])

    def judge(self, text):
        from derive.grading.verdicts import RTOL, ATOL, _judge_value

        related = {n: float(derivative_sup(op)["sup"]) for n, op in DERIVATIVE_MAX.items()}
        item = _judge_value(self.name, text, self.expected, related, RTOL, ATOL)
        info = derivative_sup(self.op)
        y = sympy.Symbol("y", real=True)
        rule = OPS[self.op].derivative(sympy.Symbol("x", real=True), y)
        about = (f"the largest {self.op}'(x) = {rule} (y = {self.op}(x), in ({info['range'][0]}, "
                 f"{info['range'][1]})) is {info['sup']}" + (f", at y = {info['at_output']}"
                                                             if info["at_output"] is not None else ""))
        msg = item["message"] if item["verdict"] == "correct" else f"{item['message']}; {about}"
        return item["verdict"], msg, {"form": self.form}


def rnn_judges(sol) -> dict:
    """derive check's judges for rnn-bptt: dE_s/dP and dE/dP (path sums),
    and the largest derivatives of sigmoid and tanh."""
    ctx = _Context(sol)
    out = {}
    for P in RNNModel.PARAMS:
        out[f"dE/d{P}"] = StepGradient(ctx, None, P)
        for s in range(1, sol.dims["T"] + 1):
            out[f"dE_{s}/d{P}"] = StepGradient(ctx, s, P)
    for name, op in DERIVATIVE_MAX.items():
        out[name] = DerivativeMax(name, op)
    return out


class RNNProblem(TensorProblem):
    """rnn-bptt: a TensorProblem whose solutions carry ``judges``."""

    def solve(self, values=None, steps: int = 1):
        sol = super().solve(values, steps)
        if hasattr(sol, "model"):       # the component-wise solution (large sizes: the matrix engine alone)
            sol.judges = rnn_judges(sol)
        return sol


def _question(T, d, n, k) -> str:
    return B.Tex(
        f"A recurrent network is unrolled over $T = {T}$ time steps: $H_t = f(U I_t + W H_{{t-1}})$, "
        "$O_t = V H_t$, with inputs $I_t$, hidden states $H_t$ ($H_0$ given), outputs $O_t$ and targets $Y_t$. "
        "The error of step $t$ is $E_t = \\tfrac12 \\lVert O_t - Y_t \\rVert^2$ and the total error is "
        "$E = \\sum_t E_t$. Compute (a) $\\partial E/\\partial W$, $\\partial E/\\partial U$, "
        "$\\partial E/\\partial V$; (b) the same for $E_2$; (c) the same for $E_3$: first in general as sums "
        "over time of products of Jacobians ($f$ unspecified), then with "
        f"$f = \\tanh$ and sizes $d = {d}$ (input), $n = {n}$ (hidden), $k = {k}$ (output), at the values "
        "below (small numbers chosen by a fixed rule). Then explain, with numbers, why "
        "gradients through many steps vanish or explode and how the LSTM's cell state helps.")


PROBLEMS = [
    RNNProblem(
        id="rnn-bptt", title="Backpropagation through time in an unrolled RNN",
        source="seed 000, Q1-Q2 (seed 001: a student answer)",
        question=_question, order=(0, 1),
        dims=(Dim("T", 3, 1, 64, "time steps"), Dim("d", 2, 1, 6, "input size"),
              Dim("n", 2, 1, 6, "hidden size"), Dim("k", 2, 1, 6, "output size")),
        build=lambda T, d, n, k: RNNModel(T, d, n, k),
        values=default_values,
        leaf_dims={"U": ("n", "d"), "W": ("n", "n"), "V": ("k", "n"), "I": ("T", "d"), "H0": ("n",),
                   "Y": ("T", "k")},
        matrix_spec=rnn_spec,
        optimizer={"rule": "sgd", "lr": 0.1},
    ),
]

__all__ = ["PROBLEMS", "RNNModel", "unrolled", "default_values", "general_form", "form_tex"]
