"""The cases a hostile corpus found (issue 16), one named test each.

Before the fix each of these hung, printed a traceback, let a control
character through or gave an error line without its WHERE.  Every test runs
the CLI in-process under a watchdog: a run that takes longer than its bound
is interrupted (SIGINT) and fails the test instead of hanging the suite.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import threading
import time
from pathlib import Path

import pytest

from derive.cli import main

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "derive" / "problems" / "specs" / "mlp-relu-regression.yaml"
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


@contextlib.contextmanager
def watchdog(seconds: float):
    """Interrupt the main thread after ``seconds`` (a hang fails, not blocks)."""
    done = threading.Event()

    def bite():
        if not done.wait(seconds):
            os.kill(os.getpid(), signal.SIGINT)

    t = threading.Thread(target=bite, daemon=True)
    t.start()
    try:
        yield
    except KeyboardInterrupt:
        pytest.fail(f"did not finish within {seconds:g} s")
    finally:
        done.set()
        t.join()


def run(capsys, argv, bound: float = 20.0):
    start = time.monotonic()
    with watchdog(bound):
        code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err, time.monotonic() - start


def refused(capsys, argv, expected: str, bound: float = 20.0):
    """Exit 2 with exactly ``derive: error: EXPECTED`` on stderr, nothing on stdout."""
    code, out, err, elapsed = run(capsys, argv, bound)
    assert (code, out, err) == (2, "", f"derive: error: {expected}\n")
    return elapsed


def one_item(capsys, target, answers_path, bound=20.0):
    code, out, err, _ = run(capsys, ["check", target, answers_path, "--format", "json"], bound)
    assert code == 1 and err == "", err
    items = json.loads(out)["items"]
    assert len(items) == 1
    return items[0]


# -- hangs -------------------------------------------------------------------

def test_power_tower_answer(tmp_path, capsys):
    a = tmp_path / "a.yaml"
    a.write_text('w1: "((((9**64)**64)**64)**64)**64"\n')
    it = one_item(capsys, "mlp-relu-regression", a)
    assert it["verdict"] == "unparseable"
    assert it["message"] == "a power that large is not allowed (about 3911 digits; at most 1000)"


def test_latex_power_tower_answer(tmp_path, capsys):
    a = tmp_path / "a.yaml"
    a.write_text('w1: "$((((9^{64})^{64})^{64})^{64})^{64}$"\n')
    it = one_item(capsys, "mlp-relu-regression", a)
    assert it["verdict"] == "unparseable" and "a power that large is not allowed" in it["message"]


def test_rule_answer_power_tower_for_optimizers(tmp_path, capsys):
    a = tmp_path / "a.yaml"
    a.write_text('sgd_update: "((((theta_t**64)**64)**64)**64)"\n')
    it = one_item(capsys, "optimizers", a)
    assert it["verdict"] == "unparseable"
    assert it["message"].startswith("a power of a name above 256 is not allowed once powers combine "
                                    "(this one is 4096)")


def test_solve_steps_has_a_maximum(capsys):
    refused(capsys, ["solve", "mlp-relu-regression", "--steps", "100000000"],
            "--steps: must be from 1 to 10000, got 100000000")


def test_variants_count_has_a_maximum(tmp_path, capsys):
    refused(capsys, ["variants", "mlp-relu-regression", "--count", "100000000", "--seed", "1",
                     "--out", tmp_path / "v"], "--count: must be from 1 to 1000, got 100000000")
    assert not (tmp_path / "v").exists()


def test_spec_path_that_is_a_fifo_without_writer(tmp_path, capsys):
    fifo = tmp_path / "spec.yaml"
    os.mkfifo(fifo)
    refused(capsys, ["solve", fifo], f"{fifo}: is not a regular file (a pipe, device or socket)", bound=10)
    refused(capsys, ["check", "mlp-relu-regression", fifo],
            f"{fifo}: is not a regular file (a pipe, device or socket)", bound=10)
    refused(capsys, ["solve", "mlp-relu-regression", "--values", fifo],
            f"{fifo}: is not a regular file (a pipe, device or socket)", bound=10)


# -- tracebacks instead of one line -----------------------------------------------

def test_json_integer_of_5001_digits(tmp_path, capsys):
    spec = tmp_path / "big.json"
    spec.write_text('{"inputs": {"x": 1' + "0" * 5000 + "}}")
    refused(capsys, ["solve", spec], f"{spec}: line 1: an integer of 5001 digits; at most 400 are allowed")
    values = tmp_path / "values.yaml"
    values.write_text("w1: 1" + "0" * 5000 + "\n")
    refused(capsys, ["solve", SPEC, "--values", values],
            f"{values}: line 1: an integer of 5001 digits; at most 400 are allowed")


def test_set_with_60000_nested_brackets(capsys):
    refused(capsys, ["solve", "rnn-bptt", "--set", "W=" + "[" * 60000 + "]" * 60000],
            "--set W: a list nested deeper than 8 levels")


def test_exp_tower_answer(tmp_path, capsys):
    a = tmp_path / "a.yaml"
    a.write_text('w1: "exp(exp(exp(exp(1000))))"\n')
    it = one_item(capsys, "mlp-relu-regression", a)
    assert (it["verdict"], it["message"]) == ("unparseable", "the value is too large to evaluate")


def test_formula_answer_with_a_power_tower(tmp_path, capsys):
    a = tmp_path / "a.yaml"
    a.write_text('dL/dw5: "a1*((((9**64)**64)**64)**64)"\n')
    start = time.monotonic()
    it = one_item(capsys, "mlp-relu-regression", a)
    assert it["verdict"] == "unparseable" and "a power that large is not allowed" in it["message"]
    assert time.monotonic() - start < 10


def test_csv_cell_of_200000_characters(tmp_path, capsys):
    a = tmp_path / "class.csv"
    a.write_text("id,w1\n" + "s" * 200_000 + ",0.1875\n")
    refused(capsys, ["check", "mlp-relu-regression", a], f"{a}: line 2: a cell is longer than 10000 characters")
    a.write_text("id,w1\ns1," + "1" * 20_000 + "\n")
    refused(capsys, ["check", "mlp-relu-regression", a],
            f"{a}: line 2: cell 2 is longer than 10000 characters (20000)")


def test_roster_id_of_200000_characters(tmp_path, capsys):
    roster = tmp_path / "roster.csv"
    roster.write_text("id\n" + "s" * 200_000 + "\n")
    refused(capsys, ["variants", "mlp-relu-regression", "--count", "2", "--seed", "1", "--no-pdf",
                     "--roster", roster, "--out", tmp_path / "v"],
            f"{roster}: line 2: a cell is longer than 10000 characters")
    assert not (tmp_path / "v").exists()


@pytest.mark.parametrize("argv", [
    ["solve", "mlp-relu-regression", "--format", "json", "--out"],
    ["solve", "mlp-relu-regression", "--format", "pdf", "--out"],
    ["solve", "mlp-relu-regression", "--format", "tex", "--out"],
    ["codegen", "mlp-relu-regression", "--out"],
], ids=["json", "pdf", "tex", "codegen"])
def test_out_naming_an_existing_folder(argv, tmp_path, capsys, monkeypatch):
    import derive.document.render

    def no_pdf(*a, **k):
        raise AssertionError("the PDF was built before the destination was checked")

    monkeypatch.setattr(derive.document.render, "compile_pdf", no_pdf)
    folder = tmp_path / "existing"
    folder.mkdir()
    elapsed = refused(capsys, argv + [folder], f"{folder}: is a folder; give a file name")
    assert list(folder.iterdir()) == [] and elapsed < 10


def test_out_below_a_regular_file(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("KEEP")
    out = blocker / "sub" / "x.json"
    refused(capsys, ["solve", "mlp-relu-regression", "--format", "json", "--out", out],
            f"{out}: {blocker} is a file, not a folder")
    refused(capsys, ["variants", "mlp-relu-regression", "--count", "1", "--seed", "1", "--no-pdf",
                     "--out", blocker / "v"], f"{blocker / 'v'}: {blocker} is a file, not a folder")
    assert blocker.read_text() == "KEEP"


def test_out_with_a_300_character_name(tmp_path, capsys):
    out = tmp_path / ("n" * 300 + ".json")
    code, stdout, err, _ = run(capsys, ["solve", "mlp-relu-regression", "--format", "json", "--out", out])
    assert code == 2 and stdout == "" and err.count("\n") == 1
    assert err.endswith(": a name in the path is longer than 255 bytes\n")
    assert "(" in err and "characters)" in err      # the long path itself is shortened in the line


def test_out_inside_proc(capsys):
    refused(capsys, ["solve", "mlp-relu-regression", "--format", "json", "--out", "/proc/self/x.json"],
            "/proc/self/x.json: is inside /proc, a system folder; choose another place")
    refused(capsys, ["codegen", "mlp-relu-regression", "--out", "/proc/x.py"],
            "/proc/x.py: is inside /proc, a system folder; choose another place")


def test_key_out_naming_a_regular_file(tmp_path, capsys):
    f = tmp_path / "answer-key"
    f.write_text("KEEP")
    refused(capsys, ["key", "--out", f, "--no-pdf"], f"{f}: is a file, not a folder")
    assert f.read_text() == "KEEP"


# -- control characters -----------------------------------------------------------

def test_control_characters_in_name_and_question_reach_the_pdf_cleanly(tmp_path, capsys):
    import yaml

    from derive.document.render import tex_engine

    data = yaml.safe_load(SPEC.read_text())
    data.pop("title", None)
    data["name"] = "Net \x00\x01\x1b[31m\x7f end"
    data["question"] = "Why \x00 \x01 \x1b[2J \x7f?"
    spec = tmp_path / "ctl.json"
    spec.write_text(json.dumps(data))
    tex = tmp_path / "ctl.tex"
    code, out, err, _ = run(capsys, ["solve", spec, "--format", "tex", "--out", tex])
    assert code == 0, err
    text = tex.read_text()
    assert not CONTROL.search(text)
    assert r"Net \textbackslash{}x00\textbackslash{}x01\textbackslash{}x1b{[}31m\textbackslash{}x7f end" in text
    code, out, err, _ = run(capsys, ["solve", spec])
    assert code == 0 and not CONTROL.search(out) and "Net \\x00\\x01\\x1b[31m\\x7f end" in out
    if tex_engine():
        pdf = tmp_path / "ctl.pdf"
        code, out, err, _ = run(capsys, ["solve", spec, "--format", "pdf", "--out", pdf], bound=120)
        assert code == 0 and pdf.read_bytes().startswith(b"%PDF"), err


def test_ansi_escapes_in_an_answer_are_not_echoed_raw(tmp_path, capsys):
    a = tmp_path / "a.yaml"
    a.write_text('w1: "\\e[2J\\e]0;pwned\\a0.1875"\nshout: "\\e[31mred\\e[0m"\n')
    code, out, err, _ = run(capsys, ["check", "mlp-relu-regression", a])
    assert code == 1 and err == ""
    assert "\x1b" not in out and "\x07" not in out
    assert "\\x1b[2J\\x1b]0;pwned\\x070.1875" in out and "\\x1b[31mred\\x1b[0m" in out


# -- error lines without WHERE ---------------------------------------------------

def test_spec_path_with_another_ending_is_named(tmp_path, capsys):
    txt = tmp_path / "s.txt"
    txt.write_text(SPEC.read_text())
    refused(capsys, ["solve", txt], f"{txt}: a spec file must end in .yaml, .yml or .json")
    refused(capsys, ["solve", "/etc/passwd"], "/etc/passwd: a spec file must end in .yaml, .yml or .json")


def test_unknown_problem_id_is_shortened(capsys):
    code, out, err, _ = run(capsys, ["solve", "q" * 5000])
    assert code == 2 and out == "" and err.count("\n") == 1
    assert err == ("derive: error: unknown problem '" + "q" * 60 + "... (5000 characters)'; `derive list` shows "
                   "the built-ins, or give a spec file (.yaml, .yml, .json)\n")


def test_spec_time_out_names_the_limit_the_phase_and_how_to_raise_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("DERIVE_TIME_LIMIT", "0.001")
    spec = tmp_path / "net.yaml"
    spec.write_text(SPEC.read_text())
    code, out, err, _ = run(capsys, ["solve", spec])
    assert code == 2 and out == ""
    assert re.fullmatch(rf"derive: error: {re.escape(str(spec))}: (building|solving|deriving and checking) the "
                        r"spec took longer than the 0\.001 s time limit \(raise it with --time-limit SECONDS\)\n",
                        err), err


def test_pdflatex_error_not_at_the_start_of_a_log_line():
    from derive.document.render import first_error

    log = "(./doc.tex (/usr/share/texmf/tex/latex/base/article.cls! Undefined control sequence.\nl.12 \\oops\n"
    err = first_error(log, "doc")
    assert str(err) == "LaTeX: doc.tex line 12: Undefined control sequence (near '\\\\oops')"
    assert "without an error message" not in str(err)


# -- smaller ----------------------------------------------------------------------

def test_path_sum_answer_prints_a_bounded_report(tmp_path, capsys):
    a = tmp_path / "a.yaml"
    a.write_text('dE/dW: "sum_{k=1..19999} dE_3/dW"\n')
    for fmt in ("text", "json"):
        code, out, err, _ = run(capsys, ["check", "rnn-bptt", a, "--format", fmt], bound=60)
        assert code == 1 and err == ""
        assert len(out) < 20_000, len(out)     # was 2.5 MB


def test_roster_ids_a_spreadsheet_would_run_are_written_as_text(tmp_path, capsys):
    from derive.document.variants import read_roster

    ids = ["=cmd|' /C calc'!A0", "+1+2", "@SUM(A1:A2)", "-2+3", '=HYPERLINK("http://x")', "ann", "-5"]
    roster = tmp_path / "class.csv"
    import csv
    with roster.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id"])
        for sid in ids:
            w.writerow([sid])
    out = tmp_path / "v"
    code, stdout, err, _ = run(capsys, ["variants", "mlp-relu-regression", "--count", "2", "--seed", "3",
                                        "--no-pdf", "--jobs", "1", "--roster", roster, "--out", out], bound=120)
    assert code == 0, err
    written = list(csv.reader((out / "roster.csv").read_text().splitlines()))
    cells = [row[0] for row in written[1:]]
    assert cells[:5] == ["'" + sid for sid in ids[:5]]
    assert cells[5:] == ["ann", "-5"]
    assert sorted(read_roster(out / "roster.csv")) == sorted(ids)


def test_duplicate_ids_in_a_class_csv_are_one_line(tmp_path, capsys):
    a = tmp_path / "class.csv"
    a.write_text("id,w1\nann,0.1875\nbob,0.2\nann,0.3\n")
    refused(capsys, ["check", "mlp-relu-regression", a],
            f"{a}: line 4: id 'ann' appears twice (first on line 2); one row per student")


def test_byte_order_mark_accepted_in_json_and_yaml(tmp_path, capsys):
    import yaml

    data = yaml.safe_load(SPEC.read_text())
    for name, text in (("s.json", json.dumps(data)), ("s.yaml", SPEC.read_text())):
        spec = tmp_path / name
        spec.write_bytes(b"\xef\xbb\xbf" + text.encode())
        code, out, err, _ = run(capsys, ["solve", spec, "--format", "json"])
        assert code == 0 and err == "" and json.loads(out)["loss"] > 0
    for name, text in (("a.json", '{"w1": "0.1875"}'), ("a.yaml", "w1: 0.1875\n")):
        a = tmp_path / name
        a.write_bytes(b"\xef\xbb\xbf" + text.encode())
        code, out, err, _ = run(capsys, ["check", "mlp-relu-regression", a, "--format", "json"])
        assert code == 0 and json.loads(out)["items"][0]["verdict"] == "correct", (out, err)
