"""``derive variants TARGET --count N --seed S``: a different problem for every student."""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from derive.budget import MAX_COUNT, MAX_JOBS
from derive.commands._common import add_time_limit_flags, apply_time_limits, whole_number


def add_parser(sub):
    from derive.commands.check import _tol

    p = sub.add_parser("variants", help="N randomised versions of a problem, each with its question, key and answers",
                       description="Draw N versions of a gradient problem with fresh numbers (reproducible "
                                   "from --seed; docs/variants.md gives the rules) and write, "
                                   "for each, values.yaml, question.tex/.pdf, key.tex/.pdf and answers.yaml "
                                   "under DIR/variant-01/ ..., plus all-questions and all-keys for printing.")
    p.add_argument("target", metavar="TARGET", help="a built-in id or a spec file (.yaml, .yml, .json)")
    p.add_argument("--count", type=whole_number("--count", 1, MAX_COUNT), required=True, metavar="N",
                   help=f"how many variants (at most {MAX_COUNT})")
    p.add_argument("--seed", type=whole_number("--seed", 0, 2**63 - 1), required=True, metavar="S",
                   help="the seed: the same seed gives the same files")
    p.add_argument("--out", metavar="DIR", help="folder to write into (default output/variants/<id>)")
    p.add_argument("--no-pdf", action="store_true", help="write the .tex only")
    p.add_argument("--roster", metavar="CSV",
                   help="a class list with an 'id' column: each student gets a variant (DIR/roster.csv)")
    p.add_argument("--all-active", action="store_true",
                   help="every relu unit active, even where the problem's own values have a dead one "
                        "(by default a variant keeps the problem's dead units)")
    p.add_argument("--jobs", type=whole_number("--jobs", 1, MAX_JOBS), default=None, metavar="J",
                   help=f"worker processes (default: the number of CPUs, at most {MAX_JOBS})")
    p.add_argument("--export", action="append", choices=["moodle", "qti", "csv"], default=[],
                   help="also write DIR/variants-moodle.xml (Moodle XML, Cloze), DIR/variants-qti.zip "
                        "(QTI 1.2 for Canvas) or DIR/variants-answers.csv (every variant's answers); repeatable")
    p.add_argument("--rtol", type=_tol("--rtol"), default=None, metavar="R",
                   help="relative tolerance the exports accept (default: derive check's)")
    p.add_argument("--atol", type=_tol("--atol"), default=None, metavar="A",
                   help="absolute tolerance near zero the exports accept (default: derive check's)")
    p.add_argument("--min-sig", type=whole_number("--min-sig", 1, 15), default=None, metavar="K",
                   help="the exports also accept an answer rounded to K significant figures")
    add_time_limit_flags(p)
    p.set_defaults(run=run)


class Progress:
    """Progress on stderr: a bar redrawn in place on a terminal, otherwise
    one plain line per finished variant."""

    def __init__(self, stream=None, width: int = 30):
        self.stream = stream or sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.width = width
        self.start = time.monotonic()

    def __call__(self, done: int, total: int, label: str = "variants") -> None:
        if label != getattr(self, "label", label):
            self.start = time.monotonic()     # a new stage: its own clock
        self.label = label
        elapsed = time.monotonic() - self.start
        if self.tty:
            filled = round(self.width * done / total)
            eta = f", ~{elapsed / done * (total - done):4.0f} s left" if done else ""
            bar = "#" * filled + "." * (self.width - filled)
            self.stream.write(f"\r{label} [{bar}] {done}/{total}  {elapsed:5.1f} s{eta} ")
            if done == total:
                self.stream.write("\n")
        elif done:
            self.stream.write(f"{label}: {done}/{total} done ({elapsed:.1f} s)\n")
        self.stream.flush()


def run(args) -> int:
    from derive.errors import UserError
    from derive.document.render import safe_stem
    from derive.document.variants import is_gradient_problem, read_roster_ids, write_variants
    from derive.commands._common import load_target

    from derive.outfile import check_folder

    if args.out:
        check_folder(args.out)
    apply_time_limits(args)
    problem = load_target(args.target)
    if not is_gradient_problem(problem):
        raise UserError(args.target, "variants need a gradient problem (a network with parameters); "
                                     "this one has no gradients")
    ids = read_roster_ids(args.roster) if args.roster else None
    out = Path(args.out) if args.out else Path("output") / "variants" / safe_stem(problem.id)
    check_folder(out)
    jobs = args.jobs or os.cpu_count() or 1
    result = write_variants(problem, args.count, args.seed, out, pdf=not args.no_pdf, jobs=jobs,
                            roster_ids=ids, target=args.target, progress=Progress(),
                            all_active=args.all_active)
    what = "values, answers, question and key" + (" (.tex and .pdf)" if result.pdf else " (.tex)")
    print(f"wrote {len(result.variants)} variants of {problem.id} to {out}/: {what} each; "
          f"all-questions, all-keys and instructor-note.md" + ("; roster.csv" if ids is not None else ""))
    for fmt in dict.fromkeys(args.export):
        from derive.grading.verdicts import ATOL, RTOL
        from derive.export import Policy, write_export

        policy = Policy(RTOL if args.rtol is None else args.rtol, ATOL if args.atol is None else args.atol,
                        args.min_sig)
        path = write_export(fmt, problem, result.variants, args.seed, out, policy, roster_ids=ids)
        print(f"wrote {path}")
    if result.note:
        print(f"derive: {result.note}", file=sys.stderr)
    return 0
