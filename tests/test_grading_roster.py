"""derive check --roster applies the grader's policy (--min-sig, --decimals)
to every student's own variant, as a class checked against one set of values."""
import json
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def run(*args, cwd):
    return subprocess.run([sys.executable, "-m", "derive", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, timeout=300)


def test_roster_check_uses_min_sig(tmp_path):
    (tmp_path / "class.csv").write_text("id\nann\nbob\n")
    made = run("variants", "mlp-relu-regression", "--count", 2, "--seed", 3, "--no-pdf", "--out", "v",
               "--roster", "class.csv", "--jobs", 1, cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    roster = dict(line.split(",") for line in (tmp_path / "v" / "roster.csv").read_text().split()[1:])
    rows = ["id,w1"]
    for sid in ("ann", "bob"):
        key = yaml.safe_load((tmp_path / "v" / f"variant-{int(roster[sid]):02d}" / "answers.yaml").read_text())
        two = float("%.2g" % float(key["w1"]))           # 2 significant figures
        rows.append(f"{sid},{two!r}")
    (tmp_path / "answers.csv").write_text("\n".join(rows) + "\n")
    verdicts = {}
    for sig in (2, 4):
        out = run("check", "mlp-relu-regression", "answers.csv", "--roster", "v/roster.csv", "--min-sig", sig,
                  "--format", "json", cwd=tmp_path)
        assert out.returncode in (0, 1), out.stderr
        result = json.loads(out.stdout)
        verdicts[sig] = {r["id"]: r["items"][0]["verdict"] for r in result["rows"]}
        assert "policy" in result
    exact = [sid for sid in verdicts[2] if verdicts[2][sid] == "correct"]   # a value exact at 2 digits
    for sid in set(verdicts[2]) - set(exact):
        assert verdicts[2][sid] == "rounding" and verdicts[4][sid] != "rounding", (sid, verdicts)
