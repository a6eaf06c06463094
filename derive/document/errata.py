"""Errata of the seeds' published answers, found by checking them.

The seeds' own answers are transcribed, as written, into answers files under
``examples/seed-answers/`` (``index.yaml`` says which problem each answers).
:func:`findings` runs the checker on each of them: what is "right" comes from
derive's solution and "why" from the checker's diagnosis, never typed in.

>>> f = [x for x in findings() if x["seed"] == "004" and x["quantity"] == "w3"][0]
>>> f["written"], f["right"], f["verdict"]
('.2875', '-0.2', 'incorrect')
"""
from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from derive.grading.answers import read_answers
from derive.grading.verdicts import _exact_text, answer_key, check, CheckError
from derive.engine.spec import read_file

#: verdicts that are errata (a plain rounding to the digits shown is not)
ERRATA_VERDICTS = ("incorrect", "carried-forward", "unparseable", "unknown-name")


def answers_dir() -> Path | None:
    """examples/seed-answers in a checkout, or the copy inside a wheel."""
    here = Path(__file__).resolve().parent.parent
    for cand in (here.parent / "examples" / "seed-answers", here / "seed_answers"):
        if (cand / "index.yaml").is_file():
            return cand
    return None


def entries() -> list:
    """The index: one dict per answers file (file, target, seed, question,
    and optionally values: a values file for the problem's givens, and
    questions: quantity name -> the part of the question it answers)."""
    d = answers_dir()
    if d is None:
        return []
    return [dict(e, path=str(d / e["file"])) for e in read_file(d / "index.yaml")]


def check_entry(entry: dict, solved: dict | None = None) -> dict | None:
    """The check result of one transcribed answers file (None if its
    problem is not built in yet).  ``solved`` (id -> the solution at the
    problem's own values), where the caller has it, is used instead of
    solving again."""
    from derive.problems import load

    try:
        problem = load(entry["target"])
    except Exception:  # noqa: BLE001 - a built-in still being written
        return None
    values = read_file(Path(entry["path"]).parent / entry["values"]) if entry.get("values") else None
    solution = (solved or {}).get(entry["target"]) if values is None else None
    solution = solution or problem.solve(values)
    return check(solution, read_answers(entry["path"]), target=entry["target"]), solution


@lru_cache(maxsize=1)
def _findings() -> tuple:
    return _collect()


#: the last collection made with a caller's solutions (the key asks twice:
#: for the summary and for the boxes beside the questions)
_LAST: list = [None, ()]


def _collect(solved: dict | None = None) -> tuple:
    if solved is not None and _LAST[0] is solved:
        return _LAST[1]
    out = []
    for entry in entries():
        got = check_entry(entry, solved)
        if got is None:
            continue
        result, solution = got
        for item in result["items"]:
            if not _is_erratum(item):
                continue
            # an entry answering several parts may label each quantity's part
            question = (entry.get("questions") or {}).get(item["name"], entry["question"])
            out.append({"seed": entry["seed"], "question": question, "target": entry["target"],
                        "quantity": item["name"], "written": item["given"],
                        "right": _right(solution, item), "why": _why(item["message"]),
                        "verdict": item["verdict"], "message": item["message"]})
    if solved is not None:
        _LAST[:] = [solved, tuple(out)]
    return tuple(out)


def findings(solved: dict | None = None) -> list:
    """Every mistake found in the seeds' transcribed answers, in index order:
    dicts with seed, question, target, quantity, written, right, why, verdict.
    ``solved`` (id -> solution at the problem's own values) saves solving the
    problems a caller has already solved."""
    return [dict(f) for f in (_collect(solved) if solved else _findings())]


def _is_erratum(item) -> bool:
    if item["verdict"] in ERRATA_VERDICTS:
        return True
    # a rounding that is not simply the exact value rounded to the digits shown
    return item["verdict"] == "rounding" and "truncated" in item["message"]


def _right(solution, item) -> str:
    if item.get("form"):           # a judge's (or a "not given" item's) form of the quantity
        return item["form"]
    if hasattr(solution, "derivation"):
        try:
            key = answer_key(solution)
            qs = [key.quantities[key.index[q]] for q in key.resolve(item["name"])]
            return ", ".join(_exact_text(q) for q in qs)
        except CheckError:
            pass
    return _compact(item["expected"])


def _compact(v) -> str:
    if isinstance(v, list):
        if all(not isinstance(x, list) for x in v) and all(isinstance(x, int) for x in v) and len(v) > 1:
            return " x ".join(str(x) for x in v)
        return "[" + ", ".join(_compact(x) for x in v) + "]"
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def _why(message: str) -> str:
    if message.startswith("not given in the answer"):
        return "not given in the published answer, which the question asks for"
    why = re.sub(r"^right value: [^;]*;?\s*", "", message).strip()
    return why or "no simple slip explains the written value; derive's value is computed from the givens"


# ---------------------------------------------------------------------------
# Errata as the answer key prints them: beside their question, with a severity

#: how bad a published answer is (the key's words); "accepted" is not an erratum
SEVERITIES = ("wrong value", "wrong formula", "inconsistent statement", "omission", "loose but true",
              "notation", "accepted")

#: (seed, quantity) -> how the key presents a finding: the part of the seed
#: it belongs beside (seed 001 answers seed 000, so its errata sit by seed
#: 000's questions), its severity, what was written as the seed typesets it,
#: and, where the checker's diagnosis alone would mislead, the reason in words
#: (numbers in it are filled in from the solutions by :func:`key_errata`).
_PATHS = ("The sum stops at $k = 2$ while the product runs to 3: it misses the path $k = 3$ "
          "(the parameter acting at the last step, the largest term), and its extra term $k = 0$ is zero since "
          "$H_0$ is given. At derive's instance the sum as written is {written_value}, the right value "
          "{right_value}.")
_LSTM = ("The published answer gives the three gates but not the candidate, the cell update or the output, "
         "which the question asks for (the cell update is the LSTM's point).")
_SWAP = ("$w_2$ and $w_3$ are swapped: the published forward pass ($z_1 = w_1 x_1 + w_2 x_2$, "
         "$z_2 = w_3 x_1 + w_4 x_2$) puts $w_2$ into the live unit $h_1$ and $w_3$ into the dead unit $h_2$, "
         "but its backward pass routes $w_3$ through $z_1$ and $w_2$ through $z_2$.")

NOTES = {
    ("004", "momentum_velocity_a"): dict(
        part=("004", "Q1(c)"), severity="notation", written=r"v_{t+1} \longleftarrow \rho v_t + \nabla f(w_t)",
        why="$\\nabla f(w_t)$ is common notation for the gradient of the objective at $w_t$, which is the "
            "sample's loss gradient $g_t$ here; read so, the rule is right. Only a reader who takes $f$ for "
            "the network (as in $L(f(x;\\theta), y)$ two lines below) finds it wrong: a notation remark."),
    ("004", "momentum_a_minus_b"): dict(
        part=("004", "Q1(c)"), severity="loose but true",
        written=r"\text{the two forms, side by side, as one answer}",
        why="The seed offers both forms as one answer. With a constant learning rate they are the same "
            "algorithm ($v^B_t = -\\eta\\, v^A_t$, so the iterates agree exactly); they differ only when the rate "
            "changes between steps, when the second iterates differ by {right}."),
    ("004", "nesterov_lookahead"): dict(
        part=("004", "Q1(d)"), severity="wrong formula", written=r"\tilde\theta = \theta_t + \eta v_t",
        why="The lookahead point is where momentum alone would carry the parameter, $\\theta_t + \\rho v_t$; "
            "the learning rate $\\eta$ stands in place of the momentum $\\rho$ (the seed's own second form "
            "writes $\\rho v_t$)."),
    ("004", "dL/dw3"): dict(part=("004", "Q2"), severity="wrong value", written=r"\partial L/\partial w_3 = -.175",
                            why=_SWAP),
    ("004", "dL/dw2"): dict(part=("004", "Q2"), severity="wrong value", written=r"\partial L/\partial w_2 = 0",
                            why=_SWAP),
    ("004", "w2"): dict(part=("004", "Q2"), severity="wrong value", written=r"w_2 = -.2 + 0 = -.2", why=_SWAP),
    ("004", "w3"): dict(part=("004", "Q2"), severity="wrong value", written=r"w_3 = .2 + 0.5 \cdot .175 = .2875",
                        why=_SWAP),
    ("004", "b3"): dict(part=("004", "Q2"), severity="wrong value", written=r"b_3 = 0 + .5 \cdot .35 - .175",
                        why="A sign slip in the last step: $b_3 - \\eta\\,\\partial L/\\partial b_3 = "
                            "0 - 0.5 \\cdot (-0.35)$ is $+0.175$."),
    ("004", "pool2_shape"): dict(part=("004", "Q7(a)"), severity="accepted", written=r"28 \times 28 \times 128",
                                 why="the ceil-mode value of POOL-2 on a $55 \\times 55$ map (floor mode gives "
                                     "{right}): an accepted alternative, not an error."),
    ("004", "fc1_weights"): dict(part=("004", "Q7(a)"), severity="accepted",
                                 written=r"28 \times 28 \times 128 \times 10",
                                 why="consistent with the ceil-mode POOL-2 above (floor mode gives {right}): "
                                     "accepted, carried forward."),
    ("001", "dE_3/dW"): dict(part=("000", "Q1(c)"), severity="wrong formula", why=_PATHS),
    ("001", "dE_3/dU"): dict(part=("000", "Q1(c)"), severity="wrong formula", why=_PATHS),
    ("001", "dE_3/dU as V"): dict(part=("000", "Q1(c)"), severity="wrong formula",
                                  why="$(O_3 - \\hat O_3) H_3^\\top$ is $\\partial E_3 / \\partial V$, the output "
                                      "weights' gradient, not that of the input weights $U$, which reach $E_3$ "
                                      "through every earlier state. At derive's instance it gives {written_value} "
                                      "instead of {right_value}."),
    ("001", "dE_2/dU"): dict(part=("000", "Q1(b)"), severity="wrong formula",
                             why="$(O_2 - \\hat O_2) H_2^\\top$ is the gradient of the output weights, "
                                 "$\\partial E_2 / \\partial V$, not of the input weights $U$, which reach "
                                 "$E_2$ through $H_1$ and $H_2$. At derive's instance it gives {written_value} "
                                 "instead of {right_value}."),
    ("001", "sigmoid_derivative_max"): dict(
        part=("000", "Q2(a)"), severity="loose but true",
        written=r"\text{``for sigmoid activations, gradient is upper bounded by 1''}",
        why="True, but loose: the sigmoid's derivative $\\sigma(1 - \\sigma)$ is at most {right} (at "
            "$\\sigma = 1/2$), and it is this small bound, not 1, that makes products of many such factors "
            "vanish. Accept it; the tight bound deserves the full mark."),
    ("001", "ap11"): dict(part=("000", "Q3"), severity="accepted", written="0.752",
                          why="the mean of the interpolated precisions rounded to 3 decimals, truncated: "
                              "within the tolerance (exact value {right})."),
    ("001", "matrix"): dict(
        part=("000", "Q6(b)"), severity="inconsistent statement",
        written=r"\begin{bmatrix} a & 0 & 0 & 0 \\ b & a & 0 & 0 \\ 0 & b & 0 & 0 \\ c & 0 & a & 0 \\ "
                r"d & c & b & a \\ 0 & d & 0 & b \\ 0 & 0 & d & 0 \\ 0 & 0 & 0 & d \end{bmatrix}_{9 \times 4}",
        why="The matrix is labelled $9 \\times 4$ but has 8 rows: the row of output $(3, 1)$ has $d$ where $c$ "
            "belongs, and the row of output $(3, 2)$, $(0\\ 0\\ d\\ c)$, is missing. The product written next "
            "to it (9 entries) is right, so only the matrix is wrong (the seed's kernel "
            "$\\begin{bmatrix} a & b \\\\ c & d \\end{bmatrix}$ is $K$ here)."),
    ("001", "iou_a"): dict(part=("000", "Q5"), severity="inconsistent statement", union=(100, 60, 32),
                           written=r"\text{size } (4 \times 6);\quad IOU = \frac{4 \times 8}{100 + 60 - 32} = 0.25"),
    ("003", "g"): dict(part=("003", "1.b"), severity="omission", written=r"\text{not given}", why=_LSTM),
    ("003", "c"): dict(part=("003", "1.b"), severity="omission", written=r"\text{not given}", why=_LSTM),
    ("003", "h"): dict(part=("003", "1.b"), severity="omission", written=r"\text{not given}", why=_LSTM),
    ("003", "p_interp_rule"): dict(
        part=("003", "2.c"), severity="wrong formula", written=r"\max_{r' > r} p(r')",
        why="With a strict $r' > r$ the interpolated precision at a recall that is reached ignores that point's "
            "own precision, and $p_{\\text{interp}}(1) = 0$: on seed 000's ranking AP$_{11}$ would be "
            "{strict} instead of {exact}. The VOC definition takes $r' \\ge r$."),
}


def _matrix_tex(rows) -> str:
    def cell(x):
        x = str(x)
        return re.sub(r"^([a-z])(\d+)$", r"\1_{\2}", x)
    if rows and isinstance(rows[0], list):
        body = r" \\ ".join(" & ".join(cell(x) for x in r) for r in rows)
    else:
        body = r" \\ ".join(cell(x) for x in rows)
    return r"\begin{bmatrix}" + body + r"\end{bmatrix}"


def _value_tex(text: str) -> str:
    """A finding's written or right value (a number, a shape, a list) as LaTeX."""
    import ast

    text = text.strip()
    if text.startswith("["):
        try:
            v = ast.literal_eval(re.sub(r"([A-Za-z_]\w*)", r"'\1'", text))
            if isinstance(v, list):
                return _matrix_tex([[_short(x) for x in r] if isinstance(r, list) else _short(r) for r in v])
        except (ValueError, SyntaxError):
            pass
    if re.fullmatch(r"[\d.]+( x [\d.]+)+", text):
        return text.replace(" x ", r" \times ")
    if re.fullmatch(r"-?[\d.]+(e-?\d+)?", text):
        from derive.typeset.fmt import num_tex
        import sympy

        return text if not "e" in text else num_tex(sympy.Float(text))
    return None


def _short(x):
    if isinstance(x, float):
        return f"{x:.6g}"
    return x


def _lists_in(message: str) -> list:
    return re.findall(r"\[\[[^\]]*\](?:, \[[^\]]*\])*\]", message)


def key_errata(solutions: dict) -> list:
    """The errata as the key prints them: dicts with seed, question, part
    ((seed, label) of the question they sit beside), quantity, severity,
    written (LaTeX), right (LaTeX), why ($...$ markup), accepted (bool).
    Numbers are the checker's and the solutions', never typed in."""
    from derive.document.keyparts import mat, n, rows, section

    out = []
    for f in (_collect(solutions) if solutions else _findings()):
        key = (f["seed"], f["quantity"])
        if f["quantity"] == "dE_3/dU" and "\\sum" not in f["written"]:
            key = (f["seed"], "dE_3/dU as V")
        note = NOTES.get(key, {})
        message = f.get("message", "")
        written = note.get("written") or _value_tex(f["written"])
        if written is None:
            written = f["written"] if "\\" in f["written"] else r"\text{" + _escape_text(f["written"]) + "}"
        right = _right_tex(f, solutions)
        lists = _lists_in(message)
        fields = {"right": f"${right}$", "written_value": "", "right_value": ""}
        if len(lists) >= 2:
            fields["written_value"] = f"${_value_tex(lists[0])}$"
            fields["right_value"] = f"${_value_tex(lists[1])}$"
        elif len(lists) == 1:
            fields["right_value"] = f"${right}$"
            fields["written_value"] = f"${_value_tex(lists[0])}$"
        if f["target"] == "interpolated-ap" and "interpolated-ap" in solutions:
            ex = solutions["interpolated-ap"].to_json()["exact"]
            import sympy

            fields["strict"] = f"${n(sympy.Rational(ex['ap11_strict']))}$"
            fields["exact"] = f"${n(sympy.Rational(ex['ap11']))}$"
        why = note.get("why")
        if f["target"] == "iou-vs-l2" and f["quantity"] == "iou_a":
            why, right = _iou_why(f, note["union"])
        if why is None:
            why = _escape_dollars(f["why"])
        for k, v in fields.items():
            why = why.replace("{" + k + "}", v)
        part = note.get("part") or (f["seed"], f["question"])
        out.append({"seed": f["seed"], "question": part[1] if f["seed"] == part[0] else f["question"],
                    "part": part, "quantity": f["quantity"], "severity": note.get("severity", "wrong value"),
                    "written": written, "right": right, "why": why, "why_text": False,
                    "accepted": note.get("severity") == "accepted"})
    return out


def _escape_text(s: str) -> str:
    return re.sub(r"([#$%&_{}])", r"\\\1", s)


def _escape_dollars(s: str) -> str:
    return s.replace("$", "")


def _right_tex(f, solutions) -> str:
    from derive.document.keyparts import rows, section

    right = f["right"]
    if f["target"] == "rnn-bptt" and f["quantity"].startswith("dE_") and "rnn-bptt" in solutions:
        e, p = f["quantity"][3], f["quantity"][-1]
        if "sum" in right:
            found = rows(section(solutions["rnn-bptt"].blocks(), "General form"),
                         rf"\frac{{\partial E_{{{e}}}}}{{\partial {p}}}")
            if found.rows:
                return found.rows[0].rhs[0].tex
    if f["target"] == "lstm-cell" and "lstm-cell" in solutions and "=" in right:
        found = rows(section(solutions["lstm-cell"].blocks(), "Forward pass"), f["quantity"])
        if found.rows:
            return f"{f['quantity']} = {found.rows[0].rhs[0].tex}"
    if f["target"] == "interpolated-ap" and f["quantity"] == "p_interp_rule":
        return r"\max_{r' \ge r} p(r')"
    value = _value_tex(right)
    if value is not None:
        return value
    return _formula_tex(right, like=str(f.get("written") or ""))


#: how the checker's names of the update-rule formulas are written in the key
FORMULA_NAMES = {"v": "v_t", "theta": r"\theta_t", "w": "w_t", "g1": "g_1", "eta1": r"\eta_1", "eta2": r"\eta_2"}


def _formula_tex(text: str, like: str = "") -> str:
    """A formula the checker printed (``rho*v + theta``) as LaTeX, terms in the order a person writes;
    beside a published formula ``like`` (``theta_t + eta*v_t``), in the order of its terms, so that
    the two read side by side (the seed's ``\rho v_t + \nabla f``: the right one ``\rho v_t + g``)."""
    import sympy

    from derive.engine.parse import parse_expr_safe

    names = {k: sympy.Symbol(k) for k in re.findall(r"[A-Za-z_]\w*", text)}
    try:
        expr = parse_expr_safe(text, names)
    except Exception:  # noqa: BLE001 - shown as text rather than lost
        return r"\text{" + _escape_text(text) + "}"
    from derive.typeset.latex import person_order

    order = _order_like(expr, like)
    if order is None:
        return person_order(expr, FORMULA_NAMES)
    out = ""
    for k, term in enumerate(order):
        if term.could_extract_minus_sign():
            out += (" - " if k else "-") + person_order(-term, FORMULA_NAMES)
        else:
            out += (" + " if k else "") + person_order(term, FORMULA_NAMES)
    return out


def _order_like(expr, like: str):
    """The terms of the sum ``expr`` in the order of the terms of the written formula
    ``like`` that share their names (``v`` and ``v_t`` alike); terms with no
    counterpart last. None when there is nothing to follow (no sum, or a written
    formula that does not parse into a sum).

    >>> import sympy
    >>> g, rho, v, theta = sympy.symbols("g rho v theta")
    >>> _order_like(g + rho * v, "rho*v_t + grad_f")
    [rho*v, g]
    >>> _order_like(rho * v + theta, "theta_t + eta*v_t")
    [theta, rho*v]
    """
    import sympy

    if not isinstance(expr, sympy.Add) or "+" not in like and "-" not in like:
        return None
    written = [set(re.sub(r"_t\b", "", w) for w in re.findall(r"[A-Za-z_]\w*", part))
               for part in re.split(r"(?<![*/^(])\s*[-+]\s*", like) if part.strip()]
    if len(written) < 2:
        return None

    def place(term):
        mine = {s.name for s in term.free_symbols}
        hits = [i for i, w in enumerate(written) if mine & w]
        return hits[0] if hits else len(written)

    terms = list(sympy.Add.make_args(expr))
    return sorted(terms, key=lambda t: (place(t), terms.index(t)))


def _iou_why(f, union) -> str:
    """Seed 001 Q5: which box the written IoU belongs to, found by computing."""
    from fractions import Fraction

    from derive.problems import load

    entry = next(e for e in entries() if e["target"] == "iou-vs-l2")
    boxes = read_file(Path(entry["path"]).parent / entry["values"])
    gt, written_box = boxes["box_gt"], boxes["box_a"]
    written = Fraction(f["written"]).limit_denominator(1000)
    problem = load("iou-vs-l2")

    def iou(b):
        return problem.solve({"box_gt": gt, "box_a": b}).to_json()["values"]["iou_a"]

    match = None
    for w in range(1, 2 * int(gt[2]) + 1):
        for h in range(1, 2 * int(gt[3]) + 1):
            b = [written_box[0], written_box[1], w, h]
            if w * h == union[1] and abs(iou(b) - float(written)) < 1e-12:
                match = b
                break
        if match:
            break
    said = iou(written_box)
    if match is None:
        return (f"The written box gives IoU ${said:.6g}$; no box of that centre gives the written value.",
                f"{said:.6g}")
    right = rf"{float(written):g} \text{{ (box }} {match[2]} \times {match[3]}\text{{)}}"
    return (f"The IoU is right for the box the student actually used: the union ${union[0]} + {union[1]} - "
            f"{union[2]}$ says the predicted box has area {match[2] * match[3]}, and a ${match[2]} \\times {match[3]}$ box centred at "
            f"$({match[0]}, {match[1]})$ gives IoU exactly ${float(written):g}$. The slip is the written size "
            f"$4 \\times 6$ (area {written_box[2] * written_box[3]}, IoU ${said:.6g}$). Accept 0.25 with the "
            f"size corrected."), right
