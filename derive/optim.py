"""Update rules with the semantics and defaults of ``torch.optim``.

One function, :func:`update`, gives a parameter's new value and new optimiser
state as SymPy expressions.  Given symbols it is the symbolic rule; given
numbers it is the numeric step (exact where the numbers allow it), so the
rule shown in the key and the number computed are the same expression.

>>> import sympy
>>> opt = Optimizer.from_spec({"rule": "sgd", "lr": 0.5})
>>> new_p, state = opt.update(sympy.Rational(1, 10), sympy.Rational(-7, 40), {}, 1)
>>> new_p
3/16
"""
from __future__ import annotations

from dataclasses import dataclass, field

import sympy

from .parse import ExprError, number

#: rule -> {hyper-parameter: torch default}; None means required.
RULES: dict[str, dict] = {
    "sgd": {"lr": sympy.Rational(1, 1000), "momentum": 0, "dampening": 0, "weight_decay": 0,
            "nesterov": False},
    "momentum": {"lr": sympy.Rational(1, 1000), "momentum": sympy.Rational(9, 10), "dampening": 0,
                 "weight_decay": 0, "nesterov": False},
    "nesterov": {"lr": sympy.Rational(1, 1000), "momentum": sympy.Rational(9, 10), "dampening": 0,
                 "weight_decay": 0, "nesterov": True},
    "adagrad": {"lr": sympy.Rational(1, 100), "lr_decay": 0, "weight_decay": 0,
                "initial_accumulator_value": 0, "eps": sympy.Rational(1, 10**10)},
    "rmsprop": {"lr": sympy.Rational(1, 100), "alpha": sympy.Rational(99, 100),
                "eps": sympy.Rational(1, 10**8), "weight_decay": 0, "momentum": 0, "centered": False},
    "adam": {"lr": sympy.Rational(1, 1000), "beta1": sympy.Rational(9, 10),
             "beta2": sympy.Rational(999, 1000), "eps": sympy.Rational(1, 10**8), "weight_decay": 0},
}

_BOOLS = {"nesterov", "centered"}


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
        """
        if spec is None:
            spec = {"rule": "sgd"}
        if not isinstance(spec, dict):
            raise OptimizerError("optimizer: must be a mapping such as {rule: sgd, lr: 0.1}")
        rule = spec.get("rule")
        if rule not in RULES:
            raise OptimizerError(f"optimizer.rule: unknown optimiser {rule!r}; known: {', '.join(RULES)}")
        hyper = dict(RULES[rule])
        for key, raw in spec.items():
            if key == "rule":
                continue
            if key == "betas" and rule == "adam" and isinstance(raw, list) and len(raw) == 2:
                hyper["beta1"], hyper["beta2"] = (_num(f"optimizer.betas", r) for r in raw)
                continue
            if key not in hyper:
                raise OptimizerError(f"optimizer.{key}: unknown hyper-parameter for {rule}; "
                                     f"known: {', '.join(hyper)}")
            if key in _BOOLS:
                if not isinstance(raw, bool):
                    raise OptimizerError(f"optimizer.{key}: must be true or false")
                hyper[key] = raw
            else:
                hyper[key] = _num(f"optimizer.{key}", raw)
        _validate(rule, hyper)
        return cls(rule, hyper)

    def with_hyper(self, **changes) -> "Optimizer":
        spec = {"rule": self.rule, **{k: v for k, v in self.hyper.items()}}
        spec.update(changes)
        return Optimizer.from_spec(spec)

    @property
    def lr(self):
        return self.hyper["lr"]

    def state_names(self) -> list[str]:
        """The per-parameter state this rule keeps, in torch's words."""
        h = self.hyper
        if self.rule in ("sgd", "momentum", "nesterov"):
            return ["momentum_buffer"] if h["momentum"] != 0 else []
        if self.rule == "adagrad":
            return ["sum"]
        if self.rule == "rmsprop":
            names = ["square_avg"]
            if h["momentum"] != 0:
                names.append("momentum_buffer")
            if h["centered"]:
                names.append("grad_avg")
            return names
        return ["exp_avg", "exp_avg_sq"]

    def initial_state(self) -> dict:
        if self.rule == "adagrad":
            return {"sum": self.hyper["initial_accumulator_value"]}
        return {name: sympy.Integer(0) for name in self.state_names()}

    def update(self, p, g, state: dict, t):
        """One step at step number t (1-based): (new parameter, new state).

        ``p``, ``g``, the state values and ``t`` may be numbers or symbols.
        """
        h = self.hyper
        state = dict(state) if state else self.initial_state()
        if h.get("weight_decay", 0) != 0:
            g = g + h["weight_decay"] * p
        lr = h["lr"]
        if self.rule in ("sgd", "momentum", "nesterov"):
            mu = h["momentum"]
            if mu != 0:
                buf = state.get("momentum_buffer")
                first = (t == 1) if not isinstance(t, sympy.Symbol) else False
                buf = g if first else mu * buf + (1 - h["dampening"]) * g
                state["momentum_buffer"] = buf
                g = g + mu * buf if h["nesterov"] else buf
            return p - lr * g, state
        if self.rule == "adagrad":
            clr = lr / (1 + (t - 1) * h["lr_decay"])
            state["sum"] = state["sum"] + g * g
            return p - clr * g / (sympy.sqrt(state["sum"]) + h["eps"]), state
        if self.rule == "rmsprop":
            a = h["alpha"]
            state["square_avg"] = a * state["square_avg"] + (1 - a) * g * g
            if h["centered"]:
                state["grad_avg"] = a * state["grad_avg"] + (1 - a) * g
                avg = sympy.sqrt(state["square_avg"] - state["grad_avg"] ** 2) + h["eps"]
            else:
                avg = sympy.sqrt(state["square_avg"]) + h["eps"]
            if h["momentum"] != 0:
                state["momentum_buffer"] = h["momentum"] * state["momentum_buffer"] + g / avg
                return p - lr * state["momentum_buffer"], state
            return p - lr * g / avg, state
        # adam
        b1, b2 = h["beta1"], h["beta2"]
        state["exp_avg"] = b1 * state["exp_avg"] + (1 - b1) * g
        state["exp_avg_sq"] = b2 * state["exp_avg_sq"] + (1 - b2) * g * g
        bc1 = 1 - b1 ** t
        bc2 = 1 - b2 ** t
        denom = sympy.sqrt(state["exp_avg_sq"]) / sympy.sqrt(bc2) + h["eps"]
        return p - (lr / bc1) * state["exp_avg"] / denom, state

    def describe(self) -> str:
        """One line: the rule and its hyper-parameters.

        >>> Optimizer.from_spec({"rule": "sgd", "lr": 0.5}).describe()
        'sgd (lr=0.5)'
        """
        shown = {k: v for k, v in self.hyper.items()
                 if k == "lr" or v != RULES[self.rule][k]}
        return f"{self.rule} (" + ", ".join(f"{k}={_show(v)}" for k, v in shown.items()) + ")"


def _show(v) -> str:
    if isinstance(v, bool):
        return str(v).lower()
    f = float(v)
    return f"{f:g}"


def _num(where: str, raw):
    try:
        return number(raw)
    except ExprError as exc:
        raise OptimizerError(f"{where}: {exc}") from None


def _validate(rule: str, h: dict) -> None:
    if not h["lr"] > 0:
        raise OptimizerError(f"optimizer.lr: learning rate must be positive, got {_show(h['lr'])}")
    for key in ("momentum", "dampening", "alpha", "beta1", "beta2"):
        if key in h and not (0 <= h[key] < 1):
            raise OptimizerError(f"optimizer.{key}: must be in [0, 1), got {_show(h[key])}")
    for key in ("weight_decay", "lr_decay", "initial_accumulator_value"):
        if key in h and h[key] < 0:
            raise OptimizerError(f"optimizer.{key}: must be non-negative, got {_show(h[key])}")
    if "eps" in h and not h["eps"] > 0:
        raise OptimizerError(f"optimizer.eps: must be positive, got {_show(h['eps'])}")
    if h.get("nesterov") and (h["momentum"] == 0 or h["dampening"] != 0):
        raise OptimizerError("optimizer.nesterov: requires momentum > 0 and dampening = 0 (as torch.optim.SGD)")
