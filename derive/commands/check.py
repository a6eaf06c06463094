"""``derive check TARGET ANSWERS``: verify hand answers (one person or a class CSV)."""
from __future__ import annotations

import json
import sys

import csv
import io

from derive.grading.answers import Batch, read_answers, read_points
from derive.budget import CHECK_SECONDS, limit
from derive.grading.verdicts import ACCEPTED, ATOL, MIN_SIG, RTOL, Policy, check, check_batch, code_phrase, exit_code
from derive.errors import UserError, as_user_error, in_file
from derive.safetext import csv_cell, shorten, visible
from derive.engine.spec import SpecError
from derive.commands._common import add_time_limit_flags, apply_time_limits, load_target, read_values

COLOURS = {"correct": "32", "equivalent": "32", "rounding": "36", "carried-forward": "33",
           "incorrect": "31", "unknown-name": "35", "unparseable": "35"}


def add_parser(sub):
    p = sub.add_parser("check", help="verify hand answers against the worked solution",
                       description="Verify hand answers. A number is correct when |given - exact| <= "
                                   f"max(RTOL*|exact|, ATOL) (defaults {RTOL:g} and {ATOL:g}); an answer "
                                   "off only by the rounding of the digits it shows is 'rounding'. "
                                   "Exit 0 when every answer is correct, equivalent or rounding, else 1.")
    p.add_argument("target", metavar="TARGET", help="a built-in id or a spec file (.yaml, .yml, .json)")
    p.add_argument("answers", metavar="ANSWERS",
                   help="YAML/JSON mapping of quantity names to answers, or a CSV with an id column")
    p.add_argument("--values", metavar="FILE", help="YAML/JSON mapping of names to numbers (other givens)")
    p.add_argument("--set", metavar="NAME=VALUE", action="append", default=[], help="override one value")
    p.add_argument("--roster", metavar="CSV",
                   help="a class CSV is checked student by student against their own variant: the "
                        "roster.csv that `derive variants --roster` wrote (variants read beside it)")
    p.add_argument("--variants", metavar="DIR", help="the same, giving the folder of `derive variants` "
                                                     "(its roster.csv)")
    p.add_argument("--format", choices=["text", "json", "csv"], default="text",
                   help="csv: a gradebook, one row per student (id, the student columns, score, points, "
                        "each question's verdict and diagnosis code)")
    p.add_argument("--min-sig", type=_count("--min-sig"), default=MIN_SIG, metavar="K",
                   help=f"a rounded answer shows at least K significant figures (default {MIN_SIG})")
    p.add_argument("--decimals", type=_count("--decimals"), default=None, metavar="D",
                   help="the question asked for D decimals: an answer rounded to them is 'rounding' "
                        "however small the value")
    p.add_argument("--points", metavar="FILE",
                   help="points per question: YAML/JSON mapping or CSV question,points (else the CSV's "
                        "'points' row, else 1 each)")
    p.add_argument("--rounding-credit", type=_share("--rounding-credit"), default=1.0, metavar="S",
                   help="share of a question's points a 'rounding' answer earns (default 1)")
    p.add_argument("--carried-credit", type=_share("--carried-credit"), default=0.0, metavar="S",
                   help="share of a question's points a 'carried-forward' answer earns (default 0)")
    p.add_argument("--rounding-is-correct", action="store_true",
                   help="count rounding as correct in each question's share_correct")
    p.add_argument("--rtol", type=_tol("--rtol"), default=RTOL, metavar="R",
                   help=f"relative tolerance (default {RTOL:g})")
    p.add_argument("--atol", type=_tol("--atol"), default=ATOL, metavar="A",
                   help=f"absolute tolerance near zero (default {ATOL:g})")
    add_time_limit_flags(p, answers=True)
    p.set_defaults(run=run)


def _tol(flag):
    def conv(text):
        try:
            v = float(text)
        except ValueError:
            raise UserError(flag, f"expected a number, got {text!r}") from None
        if not (v >= 0 and v < float("inf")):
            raise UserError(flag, "must be a non-negative finite number")
        return v
    return conv


def _count(flag):
    def conv(text):
        try:
            v = int(text)
        except ValueError:
            raise UserError(flag, f"expected a whole number, got {text!r}") from None
        if not 0 <= v <= 15:
            raise UserError(flag, "must be between 0 and 15")
        return v
    return conv


def _share(flag):
    def conv(text):
        v = _tol(flag)(text)
        if v > 1:
            raise UserError(flag, "must be between 0 and 1")
        return v
    return conv


def policy_of(args) -> Policy:
    return Policy(args.rtol, args.atol, args.min_sig, args.decimals, args.rounding_credit, args.carried_credit,
                  args.rounding_is_correct)


def _emit(args, result) -> int:
    bound_messages(result)
    for w in result.get("warnings", []):
        # a column name is the user's text: no control characters reach the terminal
        print(f"derive: warning: {visible(shorten(str(args.answers), 200))}: {visible(w)}", file=sys.stderr)
    if args.format == "json":       # json.dumps writes control characters as \u escapes
        print(json.dumps(result, indent=2))
    elif args.format == "csv":
        sys.stdout.write(render_csv(result))
    else:
        print(render_text(result, colour=sys.stdout.isatty()))
    return exit_code(result)


def run(args) -> int:
    apply_time_limits(args)
    problem = load_target(args.target)
    points = None
    if args.points:
        try:
            points = read_points(args.points)
        except SpecError as exc:
            raise in_file(args.points, exc) from None
    with limit(CHECK_SECONDS, "checking the answers", args.answers):
        if args.roster or args.variants:
            if args.format == "csv":
                raise UserError("--format", "csv (a gradebook) is for a class CSV checked against one key")
            return _emit(args, _run_roster(args, problem))
        return _run(args, problem, points)


def _run(args, problem, points) -> int:
    values = read_values(args.values, args.set)
    try:
        solution = problem.solve(values or None)
    except Exception as exc:  # noqa: BLE001
        if as_user_error(exc) is None:
            raise
        raise in_file(args.values or args.target, exc) from None
    try:
        answers = read_answers(args.answers)
    except SpecError as exc:
        raise in_file(args.answers, exc) from None
    if args.format == "csv" and not isinstance(answers, Batch):
        raise UserError("--format", "csv (a gradebook) needs a class CSV of answers")
    try:
        if isinstance(answers, Batch):
            result = check_batch(solution, answers, target=args.target, policy=policy_of(args), points=points)
        else:
            result = check(solution, answers, target=args.target, policy=policy_of(args))
    except SpecError as exc:
        raise in_file(args.answers, exc) from None
    return _emit(args, result)


def _run_roster(args, problem) -> dict:
    """A class CSV against each student's own variant (``derive variants``)."""
    from pathlib import Path

    from derive.document.variants import check_class, read_roster

    if args.values or args.set:
        raise UserError("--roster", "each student's values come from their variant; "
                                    "leave out --values and --set")
    if args.roster and args.variants:
        raise UserError("--roster", "give --roster or --variants, not both")
    roster_path = Path(args.roster) if args.roster else Path(args.variants) / "roster.csv"
    roster = read_roster(roster_path)
    try:
        answers = read_answers(args.answers)
    except SpecError as exc:
        raise in_file(args.answers, exc) from None
    if not isinstance(answers, Batch):
        raise UserError(args.answers, "--roster checks a class CSV (an id column, one row per student)")
    try:
        return check_class(problem, answers, roster, roster_path.parent, args.rtol, args.atol,
                           target=args.target, policy=policy_of(args))
    except SpecError as exc:
        raise in_file(args.answers, exc) from None


def _paint(text, verdict, colour):
    return f"\x1b[{COLOURS[verdict]}m{text}\x1b[0m" if colour else text


#: characters shown of one cell of the table, and of a note (the last column)
MAX_CELL_SHOWN = 200
MAX_NOTE = 2000


def _cells(row) -> list:
    """A row's cells as one-line visible text of bounded length."""
    last = len(row) - 1
    return [visible(shorten(str(c), MAX_NOTE if k == last else MAX_CELL_SHOWN)) for k, c in enumerate(row)]


#: entries shown of a list a judge adds to an item (paths of a path sum, ...)
MAX_LIST_SHOWN = 100


def bound_messages(result: dict) -> dict:
    """The result with every message at most MAX_NOTE characters and every
    list a judge adds at most MAX_LIST_SHOWN entries: the explanation of a
    25-byte hostile answer must not print megabytes.  ``given`` and
    ``expected`` (the answer and the key) are left whole."""
    for items in [result.get("items", [])] + [r["items"] for r in result.get("rows", [])]:
        for it in items:
            for k, v in it.items():
                if k not in ("given", "expected"):
                    it[k] = _bounded(v)
    return result


def _bounded(v):
    if isinstance(v, str):
        return shorten(v, MAX_NOTE)
    if isinstance(v, list):
        head = [_bounded(x) for x in v[:MAX_LIST_SHOWN]]
        return head + ([f"... ({len(v) - MAX_LIST_SHOWN} more)"] if len(v) > MAX_LIST_SHOWN else [])
    if isinstance(v, dict):
        return {k: _bounded(x) for k, x in v.items()}
    return v


def _table(header, rows, colour_col=None, colour=False) -> list:
    rows = [_cells(r) for r in rows]
    widths = [max(len(str(r[k])) for r in [header] + rows) for k in range(len(header))]
    widths[-1] = 0
    out = ["  " + "  ".join(str(h).ljust(w) for h, w in zip(header, widths)).rstrip(),
           "  " + "  ".join("-" * max(w, len(str(h))) for h, w in zip(header, widths)).rstrip()]
    for r in rows:
        cells = []
        for k, (c, w) in enumerate(zip(r, widths)):
            text = c.ljust(w)
            if k == colour_col:
                text = _paint(text, str(c), colour)
            cells.append(text)
        out.append("  " + "  ".join(cells).rstrip())
    return out


def _show(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, list):
        return "[" + ", ".join(_show(x) for x in v) + "]"
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def _summary_line(summary) -> str:
    parts = [f"{summary[v]} {v}" for v in summary if v != "total" and summary[v]]
    ok = sum(summary.get(v, 0) for v in ACCEPTED)
    return f"{ok}/{summary['total']} accepted" + (f" ({', '.join(parts)})" if parts else "")


def _cell(text) -> str:
    """A gradebook cell: visible text a spreadsheet never runs as a formula."""
    return csv_cell(visible(str(text)))


def render_csv(result: dict) -> str:
    """The gradebook: one row per student, id, the carried student columns,
    score, points, then each question's verdict and diagnosis code."""
    questions = list(result["questions"])
    carried = result.get("columns", {}).get("carried", [])
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["id"] + carried + ["score", "points"] + [c for q in questions for c in (q, f"{q} code")])
    for r in result["rows"]:
        by = {it["name"]: it for it in r["items"]}
        cells = [r["id"]] + [r.get("fields", {}).get(c, "") for c in carried]
        cells += [f"{r['score']:g}", f"{r['points']:g}"]
        for q in questions:
            it = by.get(q)
            cells += [it["verdict"] if it else "not answered", (it.get("code") or "") if it else ""]
        w.writerow([_cell(c) for c in cells])
    return out.getvalue()


def render_text(result: dict, colour: bool = False) -> str:
    """A table for a person: one line per answer, then the counts."""
    lines = [f"derive check {visible(shorten(result['target'], MAX_CELL_SHOWN))}"]
    if "rows" not in result:
        rows = [(it["name"], it["given"], _show(it["expected"]), it["verdict"], it["message"])
                for it in result["items"]]
        lines += _table(("answer", "given", "expected", "verdict", "note"), rows, 3, colour)
        lines.append(_summary_line(result["summary"]))
        if result.get("policy"):
            lines.append(f"policy: {result['policy']}")
        return "\n".join(lines)
    lines.append("")
    lines.append("Per question")
    qrows = []
    for name, q in result["questions"].items():
        common = "; ".join(f"{c['given']} x{c['count']} ({c['verdict']}" + (f", {c['code']}" if c.get("code") else "")
                           + ")"
                           for c in q["common_wrong"])
        acc = q.get("share_accepted", q["share_correct"])
        share = "-" if acc is None else f"{100 * acc:.0f}%"
        qrows.append((name, q["answered"], share, common))
    lines += _table(("question", "answered", "accepted", "most common wrong answers"), qrows)
    lines.append("")
    lines.append("Mistakes per question")
    for name, q in result["questions"].items():
        v = q["verdicts"]
        split = ", ".join(f"{v[k]} {k}" for k in v if v[k])
        lines.append(f"  {name}: {split}")
        for code, count in q.get("codes", {}).items():
            lines.append(f"    {count} student{'s' if count != 1 else ''}: {code_phrase(code)} ({code})")
    lines.append("")
    lines.append("Per student")
    srows = []
    for r in result["rows"]:
        wrong = [f"{it['name']} ({it['verdict']})" for it in r["items"] if it["verdict"] not in ACCEPTED]
        s = r["summary"]
        who = f"{r['id']} (variant {r['variant']})" if "variant" in r else r["id"]
        score = f"{r['score']:g}/{r['points']:g}" if "score" in r else "-"
        srows.append((who, f"{sum(s[v] for v in ACCEPTED)}/{s['total']}", score, ", ".join(wrong)))
    lines += _table(("id", "accepted", "score", "not accepted"), srows)
    lines.append(_summary_line(result["summary"]))
    return "\n".join(lines)
