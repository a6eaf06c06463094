"""Update rules with the semantics and defaults of ``torch.optim``.

Each rule is written once, in :meth:`Optimizer.program`, as the ordered
assignments torch performs for one parameter at one step (decayed gradient,
then each piece of state, then the parameter).  :meth:`Optimizer.update` runs
that program on numbers (exact where the numbers allow it); the worked
solution runs the same program on symbols to print the rule, so the rule
shown in the key and the number computed are the same expression.

>>> import sympy
>>> opt = Optimizer.from_spec({"rule": "sgd", "lr": 0.5})
>>> new_p, state = opt.update(sympy.Rational(1, 10), sympy.Rational(-7, 40), {}, 1)
>>> new_p
3/16
>>> adam = Optimizer.from_spec({"rule": "adam", "lr": 0.1, "eps": 0})
Traceback (most recent call last):
...
derive.engine.optim.OptimizerError: optimizer.eps: must be positive (with eps = 0 a zero gradient divides 0 by 0), got 0
"""
from __future__ import annotations

from dataclasses import dataclass, field

import sympy

from derive.engine.parse import ExprError, number

_MILLI = sympy.Rational(1, 1000)
_CENTI = sympy.Rational(1, 100)

#: rule -> {hyper-parameter: torch default}, in the order torch's signature lists them.
RULES: dict[str, dict] = {
    "sgd": {"lr": _MILLI, "momentum": 0, "dampening": 0, "weight_decay": 0, "nesterov": False},
    "momentum": {"lr": _MILLI, "momentum": sympy.Rational(9, 10), "dampening": 0,
                 "weight_decay": 0, "nesterov": False},
    "nesterov": {"lr": _MILLI, "momentum": sympy.Rational(9, 10), "dampening": 0,
                 "weight_decay": 0, "nesterov": True},
    "adagrad": {"lr": _CENTI, "lr_decay": 0, "weight_decay": 0,
                "initial_accumulator_value": 0, "eps": sympy.Rational(1, 10**10)},
    "rmsprop": {"lr": _CENTI, "alpha": sympy.Rational(99, 100), "eps": sympy.Rational(1, 10**8),
                "weight_decay": 0, "momentum": 0, "centered": False},
    "adam": {"lr": _MILLI, "beta1": sympy.Rational(9, 10), "beta2": sympy.Rational(999, 1000),
             "eps": sympy.Rational(1, 10**8), "weight_decay": 0, "amsgrad": False},
}

#: the torch class each rule is
TORCH_CLASS = {"sgd": "SGD", "momentum": "SGD", "nesterov": "SGD", "adagrad": "Adagrad",
               "rmsprop": "RMSprop", "adam": "Adam"}

_BOOLS = {"nesterov", "centered", "amsgrad"}

#: how a hyper-parameter is written in a rule: (LaTeX, meaning)
HYPER_TEX = {
    "lr": (r"\eta", "learning rate"),
    "momentum": (r"\rho", "momentum"),
    "dampening": (r"\tau", "dampening"),
    "weight_decay": (r"\lambda", "weight decay"),
    "lr_decay": (r"\delta", "learning-rate decay"),
    "alpha": (r"\alpha", "smoothing constant"),
    "eps": (r"\epsilon", "term added to the denominator"),
    "beta1": (r"\beta_{1}", "decay of the first moment"),
    "beta2": (r"\beta_{2}", "decay of the second moment"),
}

#: each piece of torch state: (LaTeX letter, text letter, meaning)
STATE = {
    "momentum_buffer": ("b", "b", "momentum buffer (velocity)"),
    "sum": ("s", "s", "sum of squared gradients"),
    "square_avg": ("v", "v", "running average of squared gradients"),
    "grad_avg": (r"\bar{g}", "gbar", "running average of gradients"),
    "exp_avg": ("m", "m", "first moment (running average of gradients)"),
    "exp_avg_sq": ("v", "v", "second moment (running average of squared gradients)"),
    "max_exp_avg_sq": (r"v^{\max}", "vmax", "largest second moment so far"),
}


class OptimizerError(ValueError):
    """A bad optimiser specification; the message names the field."""


@dataclass(frozen=True)
class Optimizer:
    rule: str
    hyper: dict = field(default_factory=dict)

    @classmethod
    def from_spec(cls, spec) -> "Optimizer":
        """Validate an ``optimizer:`` mapping of a spec (torch names and defaults).

        >>> Optimizer.from_spec({"rule": "adam"}).hyper["beta2"]
        999/1000
        >>> Optimizer.from_spec({"rule": "adam", "betas": [0.8, 0.9]}).hyper["beta1"]
        4/5
        """
        if spec is None:
            spec = {"rule": "sgd"}
        if not isinstance(spec, dict):
            raise OptimizerError("optimizer: must be a mapping such as {rule: sgd, lr: 0.1}")
        if "rule" not in spec:
            raise OptimizerError(f"optimizer.rule: missing; one of {', '.join(RULES)}")
        rule = spec["rule"]
        if not isinstance(rule, str) or rule not in RULES:
            raise OptimizerError(f"optimizer.rule: unknown optimiser {str(rule)[:40]!r}; known: {', '.join(RULES)}")
        hyper = dict(RULES[rule])
        for key, raw in spec.items():
            if key == "rule":
                continue
            if key == "betas" and rule == "adam":
                if not (isinstance(raw, list) and len(raw) == 2):
                    raise OptimizerError("optimizer.betas: must be a list of two numbers [beta1, beta2]")
                hyper["beta1"], hyper["beta2"] = (_num("optimizer.betas", r) for r in raw)
                continue
            if key not in hyper:
                raise OptimizerError(f"optimizer.{str(key)[:40]}: unknown hyper-parameter for {rule}; "
                                     f"known: {', '.join(hyper)}")
            if key in _BOOLS:
                if not isinstance(raw, bool):
                    raise OptimizerError(f"optimizer.{key}: must be true or false")
                hyper[key] = raw
            else:
                hyper[key] = _num(f"optimizer.{key}", raw)
        _validate(hyper)
        return cls(rule, hyper)

    def with_hyper(self, **changes) -> "Optimizer":
        """The same rule with some hyper-parameters changed (validated again).

        >>> Optimizer.from_spec({"rule": "momentum"}).with_hyper(lr="0.1").lr
        1/10
        """
        spec = {"rule": self.rule, **self.hyper}
        spec.update(changes)
        return Optimizer.from_spec(spec)

    @property
    def lr(self):
        return self.hyper["lr"]

    def state_names(self) -> list[str]:
        """The per-parameter state this rule keeps, in torch's words.

        >>> Optimizer.from_spec({"rule": "rmsprop", "centered": True}).state_names()
        ['square_avg', 'grad_avg']
        """
        h = self.hyper
        if self.rule in ("sgd", "momentum", "nesterov"):
            return ["momentum_buffer"] if h["momentum"] != 0 else []
        if self.rule == "adagrad":
            return ["sum"]
        if self.rule == "rmsprop":
            names = ["square_avg"]
            if h["centered"]:
                names.append("grad_avg")
            if h["momentum"] != 0:
                names.append("momentum_buffer")
            return names
        return ["exp_avg", "exp_avg_sq"] + (["max_exp_avg_sq"] if h["amsgrad"] else [])

    def initial_state(self) -> dict:
        """State before the first step: zeros (Adagrad's sum starts at
        ``initial_accumulator_value``)."""
        if self.rule == "adagrad":
            return {"sum": self.hyper["initial_accumulator_value"]}
        return {name: sympy.Integer(0) for name in self.state_names()}

    def symbolic_hyper(self) -> tuple[dict, dict]:
        """Hyper-parameters as symbols, for printing the rule.

        Returns ``(hyper, numbers)``: ``hyper`` has a positive symbol for each
        non-zero numeric hyper-parameter (zeros and flags stay as they are, so
        the printed rule is this problem's rule), ``numbers`` maps each symbol
        to its value.

        >>> h, nums = Optimizer.from_spec({"rule": "momentum", "lr": 0.1}).symbolic_hyper()
        >>> h["lr"], h["dampening"], nums[h["momentum"]]
        (lr, 0, 9/10)
        """
        hyper, numbers = {}, {}
        for k, v in self.hyper.items():
            if isinstance(v, bool) or v == 0:
                hyper[k] = v
            else:
                s = sympy.Symbol(k, positive=True)
                hyper[k] = s
                numbers[s] = v
        return hyper, numbers

    def program(self, p, g, state: dict, t, hyper: dict | None = None, ref=None) -> list:
        """One step as torch performs it: ``[(target, expr), ...]`` in order.

        Targets are ``"grad"`` (the gradient after weight decay, only when
        ``weight_decay`` is not 0), each state name, then ``"param"``.
        ``ref(target, expr)`` gives what later assignments see for a target:
        the expression itself (the default, for numbers) or a symbol standing
        for it (for printing the rule).  ``t`` is the 1-based step count
        (torch's ``state["step"]``); a symbol means a step after the first.

        >>> b, g, w, t = sympy.symbols("b g w t", real=True)
        >>> h, _ = Optimizer.from_spec({"rule": "momentum", "lr": 0.1}).symbolic_hyper()
        >>> Optimizer.from_spec({"rule": "momentum"}).program(w, g, {"momentum_buffer": b}, t, h)
        [('momentum_buffer', b*momentum + g), ('param', -lr*(b*momentum + g) + w)]
        """
        h = self.hyper if hyper is None else hyper
        ref = ref or (lambda target, expr: expr)
        out: list = []

        def let(target, expr):
            out.append((target, expr))
            return ref(target, expr)

        if h["weight_decay"] != 0:
            g = let("grad", g + h["weight_decay"] * p)
        lr = h["lr"]
        if self.rule in ("sgd", "momentum", "nesterov"):
            mu = h["momentum"]
            if mu != 0:
                # torch creates the buffer as a copy of the first gradient (no dampening)
                first = t == 1
                b = let("momentum_buffer", g if first else mu * state["momentum_buffer"] + (1 - h["dampening"]) * g)
                g = g + mu * b if h["nesterov"] else b
            let("param", p - lr * g)
        elif self.rule == "adagrad":
            clr = lr / (1 + (t - 1) * h["lr_decay"])
            s = let("sum", state["sum"] + g**2)
            let("param", p - clr * g / (sympy.sqrt(s) + h["eps"]))
        elif self.rule == "rmsprop":
            a = h["alpha"]
            v = let("square_avg", a * state["square_avg"] + (1 - a) * g**2)
            if h["centered"]:
                gbar = let("grad_avg", a * state["grad_avg"] + (1 - a) * g)
                avg = sympy.sqrt(v - gbar**2) + h["eps"]
            else:
                avg = sympy.sqrt(v) + h["eps"]
            if h["momentum"] != 0:
                b = let("momentum_buffer", h["momentum"] * state["momentum_buffer"] + g / avg)
                let("param", p - lr * b)
            else:
                let("param", p - lr * g / avg)
        else:  # adam
            b1, b2 = h["beta1"], h["beta2"]
            m = let("exp_avg", b1 * state["exp_avg"] + (1 - b1) * g)
            v = let("exp_avg_sq", b2 * state["exp_avg_sq"] + (1 - b2) * g**2)
            if h["amsgrad"]:
                v = let("max_exp_avg_sq", sympy.Max(state["max_exp_avg_sq"], v))
            # torch: step_size = lr / bc1; denom = sqrt(v) / sqrt(bc2) + eps
            denom = sympy.sqrt(v) / sympy.sqrt(1 - b2**t) + h["eps"]
            let("param", p - lr / (1 - b1**t) * m / denom)
        return out

    def update(self, p, g, state: dict, t):
        """One step at step number t (1-based): (new parameter, new state).

        ``p``, ``g``, the state values and ``t`` may be numbers or symbols.

        >>> adam = Optimizer.from_spec({"rule": "adam", "lr": 0.1})
        >>> p, s = adam.update(sympy.Integer(1), sympy.Integer(2), {}, 1)
        >>> s["exp_avg"], s["exp_avg_sq"], float(p)
        (1/5, 1/250, 0.9000000005)
        """
        state = dict(state) if state else self.initial_state()
        new = self.step_values(p, g, state, t)
        state.update({k: v for k, v in new.items() if k in STATE})
        return new["param"], state

    def step_values(self, p, g, state: dict, t) -> dict:
        """Every target of one step's :meth:`program` as a value.

        A rational whose numerator or denominator passes 10**30 becomes a
        30-digit float: exact arithmetic over many steps of a network doubles
        the digits at every step (10 steps of SGD on a small net reach
        denominators of 300,000 bits), with no gain at 6 printed digits.

        >>> opt = Optimizer.from_spec({"rule": "sgd", "lr": 0.5})
        >>> opt.step_values(sympy.Rational(1, 3**70), sympy.Integer(1), {}, 1)["param"]
        -0.500000000000000000000000000000
        """
        return {k: _bounded(v) for k, v in self.program(p, g, state, t)}

    def describe(self) -> str:
        """One line: the rule and its hyper-parameters.

        >>> Optimizer.from_spec({"rule": "sgd", "lr": 0.5}).describe()
        'sgd (lr=0.5)'
        """
        shown = {k: v for k, v in self.hyper.items()
                 if k == "lr" or v != RULES[self.rule][k]}
        return f"{self.rule} (" + ", ".join(f"{k}={_show(v)}" for k, v in shown.items()) + ")"

    def torch_call(self) -> str:
        """The equivalent ``torch.optim`` constructor, every argument spelled out.

        >>> Optimizer.from_spec({"rule": "adam", "lr": 0.1}).torch_call()
        'torch.optim.Adam(params, lr=0.1, betas=(0.9, 0.999), eps=1e-08, weight_decay=0, amsgrad=False)'
        """
        args = []
        for k, v in self.hyper.items():
            if k == "beta2":
                continue
            if k == "beta1":
                args.append(f"betas=({_show(v)}, {_show(self.hyper['beta2'])})")
            elif isinstance(v, bool):
                args.append(f"{k}={v}")
            else:
                args.append(f"{k}={_show(v)}")
        return f"torch.optim.{TORCH_CLASS[self.rule]}(params, " + ", ".join(args) + ")"


#: beyond this size an exact rational becomes a 30-digit float (see Optimizer.step_values)
MAX_EXACT = 10**30


def _bounded(v):
    if isinstance(v, sympy.Rational) and not v.is_Integer and (abs(v.p) > MAX_EXACT or v.q > MAX_EXACT):
        return sympy.Float(v, 30)
    return v


def _show(v) -> str:
    if isinstance(v, bool):
        return str(v).lower()
    return f"{float(v):g}"


def _num(where: str, raw):
    if isinstance(raw, sympy.Basic) and raw.is_Number:   # already validated (with_hyper)
        return raw
    try:
        return number(raw)
    except ExprError as exc:
        raise OptimizerError(f"{where}: {exc}") from None


def _validate(h: dict) -> None:
    """torch's checks, plus derive's: lr and eps above 0, momentum and alpha below 1."""
    if h["lr"] < 0:
        raise OptimizerError(f"optimizer.lr: learning rate must not be negative, got {_show(h['lr'])}")
    if h["lr"] == 0:   # torch accepts it; in a worked solution it is always a slip
        raise OptimizerError("optimizer.lr: the learning rate must be positive, got 0")
    for key in ("momentum", "alpha", "beta1", "beta2"):
        if key in h and not (0 <= h[key] < 1):
            raise OptimizerError(f"optimizer.{key}: must be in [0, 1), got {_show(h[key])}")
    if "dampening" in h and not (0 <= h["dampening"] <= 1):
        raise OptimizerError(f"optimizer.dampening: must be in [0, 1], got {_show(h['dampening'])}")
    for key in ("weight_decay", "lr_decay", "initial_accumulator_value"):
        if key in h and h[key] < 0:
            raise OptimizerError(f"optimizer.{key}: must not be negative, got {_show(h[key])}")
    if "eps" in h and not h["eps"] > 0:
        raise OptimizerError("optimizer.eps: must be positive (with eps = 0 a zero gradient divides 0 by 0), "
                             f"got {_show(h['eps'])}")
    if h.get("nesterov") and (h["momentum"] == 0 or h["dampening"] != 0):
        raise OptimizerError("optimizer.nesterov: requires momentum > 0 and dampening = 0 (as torch.optim.SGD)")


# ---------------------------------------------------------------------------
# The rule as a worked solution: the same program, printed.


@dataclass(frozen=True)
class StepRecord:
    """One step of a run: everything the worked solution shows about it."""

    t: int
    loss: object                 # loss at the parameters before the step
    params: dict                 # parameter -> value before the step
    grads: dict                  # parameter -> dL/dparameter at those values
    state: dict                  # parameter -> {state name: value before the step}
    values: dict                 # parameter -> {target: value} of this step's program


def trace(optimizer: Optimizer, params: dict, gradients, steps: int, settle=None) -> list:
    """Run ``steps`` steps; ``gradients(params) -> (grads, loss)``.

    ``settle`` is applied to every new value (GraphSolution keeps exact
    rationals and turns the rest into 30-digit floats; the default keeps
    expressions as they are).

    >>> opt = Optimizer.from_spec({"rule": "momentum", "lr": 0.5})
    >>> run = trace(opt, {"w": sympy.Integer(2)}, lambda p: ({"w": p["w"]}, p["w"] ** 2 / 2), 2)
    >>> [r.params["w"] for r in run], run[-1].values["w"]
    ([2, 1], {'momentum_buffer': 14/5, 'param': -2/5})
    """
    settle = settle or (lambda v: v)
    params = dict(params)
    states = {p: optimizer.initial_state() for p in params}
    out = []
    for t in range(1, steps + 1):
        grads, loss = gradients(params)
        values = {}
        for p in params:
            values[p] = {k: settle(v) for k, v in optimizer.step_values(params[p], grads[p], states[p], t).items()}
        out.append(StepRecord(t, loss, dict(params), dict(grads), {p: dict(s) for p, s in states.items()}, values))
        for p in params:
            states[p] = {k: values[p].get(k, v) for k, v in states[p].items()}
            params[p] = values[p]["param"]
    return out


@dataclass(frozen=True)
class Notation:
    """How one parameter's quantities are named at one step: (LaTeX, text) pairs.

    ``state(name, new)`` names a piece of state after (``new``) or before the step.
    """

    theta_old: tuple
    theta_new: tuple
    grad: tuple
    grad_decayed: tuple
    state_fn: object

    def state(self, name: str, new: bool) -> tuple:
        return self.state_fn(name, new)


def general_notation(step: str = "t", before: str = "t-1") -> Notation:
    r"""The textbook names: :math:`\theta_{t-1}, g_t, m_{t-1}, m_t`.

    >>> general_notation().state("exp_avg", True)
    ('m_{t}', 'm_t')
    """
    def state(name, new):
        tex_letter, txt, _ = STATE[name]
        when = step if new else before
        return f"{tex_letter}_{{{when}}}", f"{txt}_{_sub(when)}"

    return Notation((rf"\theta_{{{before}}}", f"theta_{_sub(before)}"), (rf"\theta_{{{step}}}", f"theta_{_sub(step)}"),
                    (f"g_{{{step}}}", f"g_{_sub(step)}"), (rf"\tilde{{g}}_{{{step}}}", f"gd_{_sub(step)}"), state)


def _sub(when: str) -> str:
    return f"({when})" if "-" in when else when


def parameter_notation(p_tex: str, p_text: str, grad_tex: str, grad_text: str, t: int) -> Notation:
    r"""Names for parameter ``p`` at step ``t``: ``w_{1}``, ``w_{1}^{+}``, ``m^{w_{1}}_{1}``.

    >>> parameter_notation("w_{1}", "w1", r"\frac{\partial L}{\partial w_{1}}", "dL/dw1", 1).state("exp_avg", False)
    ('m^{w_{1}}_{0}', 'm[w1]_0')
    """
    def state(name, new):
        tex_letter, txt, _ = STATE[name]
        when = t if new else t - 1
        return f"{tex_letter}^{{{p_tex}}}_{{{when}}}", f"{txt}[{p_text}]_{when}"

    from derive.typeset.latex import superscript

    return Notation((p_tex, p_text), (superscript(p_tex, "+"), p_text + "+"), (grad_tex, grad_text),
                    (rf"\tilde{{g}}^{{{p_tex}}}_{{{t}}}", f"gd[{p_text}]_{t}"), state)


def rule_rows(optimizer: Optimizer, t, notation: Notation, numbers: dict | None = None, values: dict | None = None):
    r"""The step as equation rows (:class:`derive.typeset.blocks.EqRow`): the rule with
    hyper-parameters as symbols, then (given ``numbers``) the same expression
    with every symbol replaced by its number, then the value.

    ``numbers`` = ``{"param": value, "grad": value, "state": {name: value}}``
    before the step; ``values`` = this step's computed ``{target: value}``.

    >>> opt = Optimizer.from_spec({"rule": "momentum", "lr": 0.1})
    >>> [r.rhs[0].text for r in rule_rows(opt, sympy.Symbol("t"), general_notation())]
    ['momentum*b_(t-1) + g_t', 'theta_(t-1) - lr*b_t']
    """
    from derive.typeset import blocks as B
    from derive.typeset.printing import tex, tex_with_numbers, text, text_with_numbers

    hyper, hyper_numbers = optimizer.symbolic_hyper()
    names_tex = {s: HYPER_TEX[k][0] for k, s in hyper.items() if isinstance(s, sympy.Symbol)}
    names_text = {s: k for k, s in hyper.items() if isinstance(s, sympy.Symbol)}

    def sym(key, pair):
        s = sympy.Symbol(f"~{key}", real=True)   # sorts after the hyper-parameters: "rho b", not "b rho"
        names_tex[s], names_text[s] = pair
        return s

    theta, grad = sym("theta", notation.theta_old), sym("g", notation.grad)
    old = {k: sym(f"old_{k}", notation.state(k, False)) for k in optimizer.state_names()}
    new = {k: sym(f"new_{k}", notation.state(k, True)) for k in optimizer.state_names()}
    new["grad"] = sym("new_grad", notation.grad_decayed)
    new["param"] = sym("new_param", notation.theta_new)
    program = optimizer.program(theta, grad, old, t, hyper, ref=lambda k, e: new[k])

    nums = None
    if numbers is not None:
        nums = dict(hyper_numbers)
        nums[theta], nums[grad] = numbers["param"], numbers["grad"]
        nums.update({old[k]: numbers["state"][k] for k in old})
    rows = []
    for target, expr in program:
        if target == "param":
            # written as theta - step, the way the rule is read
            step = theta - expr
            sym_tex = f"{tex(theta, names_tex)} - {_wrap_tex(tex(step, names_tex), step)}"
            sym_txt = f"{text(theta, names_text)} - {_wrap_txt(text(step, names_text), step)}"
        else:
            sym_tex, sym_txt = tex(expr, names_tex), text(expr, names_text)
        rhs = [B.Math(sym_tex, sym_txt)]
        if nums is not None:
            if target == "param":
                shown = {s: v for s, v in nums.items() if s in step.free_symbols}
                rhs.append(B.Math(f"{_num_tex(nums[theta])} - {_wrap_tex(tex_with_numbers(step, shown), step)}",
                                  f"{_num_txt(nums[theta])} - {_wrap_txt(text_with_numbers(step, shown), step)}"))
            elif not expr.is_Symbol:
                shown = {s: v for s, v in nums.items() if s in expr.free_symbols}
                rhs.append(B.Math(tex_with_numbers(expr, shown), text_with_numbers(expr, shown)))
            value = values[target]
            nums[new[target]] = value
            rhs.append(B.Math(shown_tex(value), shown_text(value)))
        lhs = new[target]
        rows.append(B.EqRow(B.Math(names_tex[lhs], names_text[lhs]), tuple(rhs)))
    return rows


def shown_text(v) -> str:
    """A value for a table: exact when short, else 6 significant digits.

    >>> shown_text(sympy.Rational(35000001, 175000010)), shown_text(sympy.Rational(3, 16))
    ('0.2', '0.1875')
    """
    from derive.typeset.fmt import num_text

    return num_text(_plain(v))


def shown_tex(v) -> str:
    from derive.typeset.fmt import num_tex

    return num_tex(_plain(v))


def _plain(v):
    """Long fractions (Adam's 35000001/175000010) read better as decimals."""
    from derive.typeset.fmt import exact_decimal

    if isinstance(v, sympy.Rational) and exact_decimal(v) is None and v.q > 1000:
        return sympy.Float(v, 30)
    return v


def _num_tex(v) -> str:
    from derive.typeset.fmt import paren_negative

    return paren_negative(shown_tex(v), tex=True)


def _num_txt(v) -> str:
    from derive.typeset.fmt import paren_negative

    return paren_negative(shown_text(v), tex=False)


def _wrap_tex(s: str, expr) -> str:
    return rf"\left({s}\right)" if expr.is_Add or s.startswith("-") else s


def _wrap_txt(s: str, expr) -> str:
    return f"({s})" if expr.is_Add or s.startswith("-") else s
