r"""derive's own LaTeX read as plain text for a terminal: the textbook lines
of the operation table (``\frac{\partial p_i}{\partial x_j} = p_i(\delta_{ij}
- p_j)`` prints as ``∂p_i/∂x_j = p_i(δ_ij − p_j)``).

Only for LaTeX derive writes itself (the operations' derivations), never for
user text: the commands it knows are the ones those lines use, and a test
reads every derivation back and finds no backslash or brace left.

>>> to_text(r"\frac{\partial p_i}{\partial x_j} = p_i\left(\delta_{ij} - p_j\right)")
'∂p_i/∂x_j = p_i(δ_ij - p_j)'
>>> to_text(r"\bar{x} = p \odot \left(\bar{p} - \mathbf{1}\, p^{\top} \bar{p}\right)")
'x̄ = p ⊙ (p̄ - 𝟏 pᵀ p̄)'
>>> to_text(r"\frac{\partial L}{\partial K_{o,c,a}} = \sum_{i} X_{c,\,si+a}\, \delta_{o,i}")
'∂L/∂K[o,c,a] = Σ_i X[c, si+a] δ[o,i]'
"""
from __future__ import annotations

import re

from derive.typeset.latex import braced_group

QUAD = "\x00"      # a wide space, kept wide when the others are tidied
#: commands that stand for one symbol or a space
SYMBOLS = {
    "partial": "∂", "sum": "Σ", "odot": "⊙", "star": "⋆", "Rightarrow": "⇒", "le": "≤", "leq": "≤",
    "ge": "≥", "in": "∈", "top": "ᵀ", "cdot": "·", "times": "×", "infty": "∞", "to": "→",
    "delta": "δ", "alpha": "α", "beta": "β", "gamma": "γ", "ell": "ℓ", "pi": "π", "sigma": "σ",
    "Phi": "Φ", "varphi": "φ", "phi": "φ", "eta": "η", "rho": "ρ", "lambda": "λ", "mu": "μ",
    "theta": "θ", "epsilon": "ε", "tanh": "tanh", "exp": "exp", "log": "log", "max": "max", "min": "min",
    "arg": "arg", "#": "#", "{": "{", "}": "}", "|": "‖", "quad": QUAD, "qquad": QUAD,
    ",": " ", ";": " ", ":": " ", " ": " ", "!": "", "left": "", "right": "", "big": "", "Big": "",
}
SUPERSCRIPTS = {"2": "²", "3": "³", "\\top": "ᵀ", "T": "ᵀ", "-1": "⁻¹", "+": "⁺", "'": "′"}
_GROUP_ARGS = {"frac": 2, "tfrac": 2, "dfrac": 2, "bar": 1, "mathbf": 1, "operatorname": 1, "text": 1,
               "mathrm": 1, "sqrt": 1, "tilde": 1, "hat": 1}


def _atom(text: str) -> str:
    """A fraction's or a root's part, in parentheses unless it is one term."""
    return text if re.fullmatch(r"[∂√]?[A-Za-z0-9.]?[\w′̄ᵀ²³]*(\[[^\]]*\])?", text) and len(text) <= 12 \
        and not re.fullmatch(r"\d+[^\d.].*", text) else f"({text})"


def _script(body: str, sup: bool, after_sum: bool = False) -> str:
    if sup:
        if body.strip() in SUPERSCRIPTS:
            return SUPERSCRIPTS[body.strip()]
        text = to_text(body)
        return "^" + (text if len(text) == 1 else f"({text})")
    text = to_text(body)
    if after_sum:                       # a sum's range: Σ_i, Σ_(c,a,b), Σ_(o,i: si+a=u)
        return "_" + (text if re.fullmatch(r"\w", text) else f"({text})")
    tight = text.replace(" ", "")
    if "," in tight:                    # an entry: X[c, si+a], δ[o,i,j]
        parts = tight.split(",")
        return "[" + (", ".join(parts) if any(len(q) > 1 for q in parts) else tight) + "]"
    return "_" + (tight if re.fullmatch(r"\w+", tight) else f"({tight})")


#: symbols a reader wants spaces around (relations and binary operators)
RELATIONS = {"⇒", "∈", "≤", "≥", "→", "⊙", "⋆", "·", "×"}
#: commands that print as a word: a space before a following letter
WORDS = {"tanh", "exp", "log", "max", "min", "arg"}


def to_text(tex: str) -> str:
    """The plain-text reading of one line of derive's LaTeX."""
    out, i = [], 0

    def space_before_letter():
        if i < len(tex) and (tex[i].isalnum() or tex[i] == "\\"):
            out.append(" ")

    while i < len(tex):
        c = tex[i]
        if c == "\\":
            m = re.match(r"\\([A-Za-z]+|.)", tex[i:])
            name, i = m.group(1), i + len(m.group(0))
            if name.isalpha():          # LaTeX drops the spaces after a command word
                while i < len(tex) and tex[i] == " ":
                    i += 1
            if name in ("begin", "end"):
                _, i = braced_group(tex, i)
                out.append("[" if name == "begin" else "]")
                continue
            args = []
            for _ in range(_GROUP_ARGS.get(name, 0)):
                a, i = braced_group(tex, i)
                args.append(a)
            if name in ("frac", "tfrac", "dfrac"):
                num, den = to_text(args[0]), to_text(args[1])
                frac = f"{_atom(num)}/{_atom(den)}"
                numeric = num.isdigit() and den.isdigit()
                nxt = tex[i:i + 1]
                out.append(f"({frac})" if numeric and nxt and nxt not in " +-=)," else frac)
                space_before_letter()
            elif name == "bar":
                out.append(to_text(args[0]) + "\u0304")
            elif name in ("tilde", "hat"):
                out.append(to_text(args[0]) + ("\u0303" if name == "tilde" else "\u0302"))
            elif name == "mathbf":
                out.append("𝟏" if args[0].strip() == "1" else to_text(args[0]))
            elif name in ("operatorname", "mathrm"):
                out.append(to_text(args[0]))
            elif name == "text":
                out.append(args[0])
            elif name == "sqrt":
                out.append("√" + _atom(to_text(args[0])))
            else:
                sym = SYMBOLS.get(name, name)
                out.append(f" {sym} " if sym in RELATIONS else sym)
                if sym in WORDS or sym.isalpha():       # tanh u, α e^x
                    space_before_letter()
        elif c in "_^":
            body, i = braced_group(tex, i + 1)
            out.append(_script(body, c == "^", after_sum=bool(out) and out[-1] == "Σ"))
        elif c in "{}":
            i += 1
        elif c == "&":
            out.append(" ")
            i += 1
        else:
            out.append(c)
            i += 1
    text = re.sub(r" +", " ", "".join(out).replace("arg max", "argmax"))
    text = re.sub(r"\[ ", "[", re.sub(r" \]", "]", text))
    return re.sub(r" ?\x00 ?", "   ", text).strip()
