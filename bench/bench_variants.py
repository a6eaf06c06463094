"""How long ``derive variants`` takes: 100 variants with PDFs at --jobs 1 and
--jobs 2, and without PDFs.

    .venv/bin/python bench/bench_variants.py [--count 100] [--target mlp-relu-regression]

Each run is a fresh ``python -m derive variants`` process writing into a
temporary folder, as a user runs it. Prints the wall time of each run, the
speed-up of two worker processes over one (the PDF build is one pdfLaTeX
process per document, so it should come close to 2 on two free cores), and
checks that both PDF runs wrote the same bytes. Other work on the machine
slows the two-worker run most, so the load average before each run and
each run's CPU time (which that load does not inflate) are printed too.
"""
from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _cpu() -> float:
    use = resource.getrusage(resource.RUSAGE_CHILDREN)
    return use.ru_utime + use.ru_stime


def _run(label: str, target: str, count: int, out: Path, *extra: str) -> float:
    load = os.getloadavg()[0]
    start, cpu = time.perf_counter(), _cpu()
    subprocess.run([sys.executable, "-m", "derive", "variants", target, "--count", str(count), "--seed", "1",
                    "--out", str(out), *extra], cwd=ROOT, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    wall, cpu = time.perf_counter() - start, _cpu() - cpu
    print(f"  {label}: {wall:7.1f} s wall ({wall / count:.2f} s per variant), {cpu:6.1f} s CPU, "
          f"load before {load:.2f}")
    return wall


def _tree(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--target", default="mlp-relu-regression")
    args = parser.parse_args()
    print(f"derive variants {args.target} --count {args.count} on {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory(prefix="derive-bench-") as tmp:
        tmp = Path(tmp)
        _run("--no-pdf, --jobs 1", args.target, args.count, tmp / "tex", "--no-pdf", "--jobs", "1")
        if shutil.which("pdflatex") is None:
            print("  no pdflatex: the PDF runs are skipped")
            return 0
        one = _run("PDFs,     --jobs 1", args.target, args.count, tmp / "j1", "--jobs", "1")
        two = _run("PDFs,     --jobs 2", args.target, args.count, tmp / "j2", "--jobs", "2")
        print(f"  speed-up of --jobs 2 over --jobs 1: {one / two:.2f}x")
        same = _tree(tmp / "j1") == _tree(tmp / "j2")
        print(f"  both PDF runs wrote the same bytes: {same}")
        pdfs = len(list((tmp / "j2").rglob("*.pdf")))
        print(f"  PDFs per run: {pdfs}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
