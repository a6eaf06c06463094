"""The shared rules behind the refusals: one text-cleaning rule, one output
helper, one time budget, one set of size bounds.

The control-character rule is checked over every code point below U+0020
and U+007F-U+009F, in each place user text is shown: a terminal line, a
check table, LaTeX prose, an error line.
"""
from __future__ import annotations

import os
from pathlib import Path
import signal
import time

import pytest
import sympy

from derive import budget
from derive.cli import error_line
from derive.commands.check import render_text
from derive.errors import UserError
from derive.typeset.latex import escape
from derive.outfile import check_file, check_folder, write
from derive.engine.parse import ExprError, ExprLimitError, parse_expr_safe
from derive.safetext import csv_cell, csv_uncell, shorten, visible

CONTROLS = [chr(c) for c in list(range(0x20)) + list(range(0x7F, 0xA0))]


def test_there_are_65_control_characters():
    assert len(CONTROLS) == 65


@pytest.mark.parametrize("ch", CONTROLS, ids=[f"U+{ord(c):04X}" for c in CONTROLS])
def test_every_control_character_is_shown_as_a_visible_escape(ch):
    shown = visible(f"a{ch}b")
    expected = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}.get(ch, f"\\x{ord(ch):02x}")
    assert shown == f"a{expected}b"
    assert all(ord(c) >= 0x20 and not 0x7F <= ord(c) <= 0x9F for c in shown)
    # the same rule in every place that shows user text
    assert expected in error_line("where", f"what {ch}")
    table = render_text({"target": f"t{ch}", "items": [
        {"name": f"n{ch}", "given": f"g{ch}", "expected": 1.0, "verdict": "incorrect", "message": f"m{ch}"}],
        "summary": {"correct": 0, "incorrect": 1, "total": 1}})
    assert f"t{expected}" in table and f"g{expected}" in table and f"m{expected}" in table
    tex = escape(f"x{ch}y")
    assert all(ord(c) >= 0x20 and not 0x7F <= ord(c) <= 0x9F for c in tex.replace("\n", ""))


def test_prose_keeps_its_line_breaks_and_tabs():
    assert visible("a\nb\tc\x1b", keep_lines=True) == "a\nb\tc\\x1b"


def test_bidirectional_overrides_are_shown():
    assert visible("\u202eevil\u2066") == "\\u202eevil\\u2066"


@pytest.mark.parametrize("cell, written", [
    ("=1+1", "'=1+1"), ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"), ("-2+3", "'-2+3"), ("@SUM(A1)", "'@SUM(A1)"),
    ("\t=1", "'\t=1"), ("\r=1", "'\r=1"), ("-0.35", "-0.35"), ("+1e-3", "+1e-3"), ("ann", "ann"), ("'quoted", "'quoted"),
])
def test_csv_cells_a_spreadsheet_would_run_are_neutralised(cell, written):
    assert csv_cell(cell) == written
    assert csv_uncell(csv_cell(cell)) == cell


def test_shorten_says_how_long_the_text_was():
    assert shorten("x" * 10, 10) == "x" * 10
    assert shorten("x" * 11, 10) == "x" * 10 + "... (11 characters)"


# -- output files -------------------------------------------------------------

def test_write_replaces_whole_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "sub" / "out.txt"
    write(target, "one")
    write(target, b"two")
    assert target.read_text() == "two"
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.txt"]


def test_a_long_valid_name_still_gets_a_valid_temporary_name(tmp_path):
    target = tmp_path / ("n" * 250 + ".txt")
    write(target, "ok")
    assert target.read_text() == "ok"


@pytest.mark.parametrize("make, expected", [
    (lambda p: p.mkdir(), "is a folder; give a file name"),
    (lambda p: os.mkfifo(p), "is not a regular file (a device, pipe or socket); give a file name"),
])
def test_check_file_refuses(make, expected, tmp_path):
    p = tmp_path / "x"
    make(p)
    with pytest.raises(UserError) as e:
        check_file(p)
    assert e.value.what == expected


def test_check_folder_refuses_a_file(tmp_path):
    p = tmp_path / "f"
    p.write_text("KEEP")
    with pytest.raises(UserError) as e:
        check_folder(p)
    assert e.value.what == "is a file, not a folder"
    with pytest.raises(UserError) as e:
        check_folder(p / "below")
    assert e.value.what == f"{p} is a file, not a folder"


def test_an_oserror_while_writing_is_one_line(tmp_path, monkeypatch):
    import errno

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", full)
    with pytest.raises(UserError) as e:
        write(tmp_path / "x.txt", "data")
    assert e.value.what == "no space left on the device"
    assert list(tmp_path.iterdir()) == []


# -- the time budget ----------------------------------------------------------

def _spin(seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


def test_limit_interrupts_and_names_phase_limit_and_variable():
    with pytest.raises(budget.TimeLimitExceeded) as e:
        with budget.limit(0.05, "spinning", "here"):
            _spin(5)
    assert str(e.value) == "spinning took longer than the 0.05 s time limit (raise it with --time-limit SECONDS)"
    assert e.value.where == "here"
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


def test_the_time_out_is_not_swallowed_by_except_exception():
    with pytest.raises(budget.TimeLimitExceeded):
        with budget.limit(0.05, "spinning"):
            try:
                _spin(5)
            except Exception:  # noqa: BLE001 - what library code between us and the loop may do
                pass
            _spin(5)


def test_nested_limits_keep_their_own_deadlines():
    seen = []
    start = time.monotonic()
    with budget.limit(5, "outer"):
        with budget.verdict_on_timeout(0.05, "inner", seen.append):
            _spin(5)
        assert time.monotonic() - start < 2
    assert seen == ["inner took longer than the 0.05 s time limit (raise it with --answer-time-limit SECONDS)"]


def test_an_outer_time_out_passes_through_an_inner_verdict():
    with pytest.raises(budget.TimeLimitExceeded) as e:
        with budget.limit(0.05, "outer"):
            with budget.verdict_on_timeout(10, "inner", lambda m: None):
                _spin(5)
    assert e.value.phase == "outer"


def test_environment_raises_the_limit(monkeypatch):
    monkeypatch.setenv("DERIVE_TIME_LIMIT", "7.5")
    assert budget.seconds(60) == 7.5
    monkeypatch.setenv("DERIVE_TIME_LIMIT", "soon")
    with pytest.raises(UserError):
        budget.check_environment()


def test_run_bounded_kills_work_started_off_the_main_thread():
    import threading

    out = {}

    def worker():
        try:
            out["fast"] = budget.run_bounded(sum, ([1, 2, 3],), 10, "adding")
            budget.run_bounded(_spin, (30,), 0.5, "spinning")
        except budget.TimeLimitExceeded as exc:
            out["slow"] = str(exc)

    t = threading.Thread(target=worker)
    start = time.monotonic()
    t.start()
    t.join(20)
    assert out == {"fast": 6, "slow": "spinning took longer than the 0.5 s time limit "
                                       "(raise it with --time-limit SECONDS)"}
    assert time.monotonic() - start < 10


def test_to_float_refuses_what_a_float_cannot_hold():
    assert budget.to_float(sympy.Rational(1, 4)) == 0.25
    for bad in (sympy.exp(sympy.exp(sympy.exp(1000))), sympy.oo, sympy.nan, sympy.I, sympy.log(-1)):
        with pytest.raises(ValueError):
            budget.to_float(bad)


# -- size bounds of expressions ---------------------------------------------------

X = {"x": sympy.Symbol("x", real=True)}


@pytest.mark.parametrize("text", ["((((9**64)**64)**64)**64)**64", "x*((((9**64)**64)**64)**64)", "(2*9**64)**64",
                                  "((((x**64)**64)**64)**64)", "x**64**64", "1e30**64", "(0.5**64)**64"])
def test_size_bounds_refuse_before_computing(text):
    start = time.monotonic()
    with pytest.raises(ExprLimitError):
        parse_expr_safe(text, X)
    assert time.monotonic() - start < 1


@pytest.mark.parametrize("text", ["x**64", "(x**8)**8", "(x**64)**4", "0.123456789012345**64", "9**64", "0.5**64*x"])
def test_size_bounds_leave_ordinary_powers_alone(text):
    parse_expr_safe(text, X)


def test_a_limit_error_is_an_expression_error():
    assert issubclass(ExprLimitError, ExprError)


def test_a_time_out_dropped_inside_a_finaliser_rings_again(capsys):
    class Slow:
        def __del__(self):     # the alarm fires here; Python drops exceptions of finalisers
            _spin(0.3)

    start = time.monotonic()
    with pytest.raises(budget.TimeLimitExceeded):
        with budget.limit(0.05, "spinning"):
            Slow()
            _spin(5)
    assert time.monotonic() - start < 2
    assert "TimeLimitExceeded" not in capsys.readouterr().err     # the dropped one is not printed


def test_parser_warnings_do_not_reach_stderr(capsys):
    with pytest.raises(ExprError):
        parse_expr_safe("'\\l'", X)
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("argv", [["solve", "{spec}"], ["codegen", "{spec}"], ["check", "{spec}", "{answers}"],
                                  ["variants", "{spec}", "--count", "2", "--seed", "1", "--no-pdf",
                                   "--out", "{tmp}/v"]])
def test_every_command_that_can_time_out_takes_the_flag_its_message_names(argv, tmp_path, monkeypatch, capsys):
    from derive.cli import main
    monkeypatch.setenv("DERIVE_TIME_LIMIT", "60")      # restored after the test (the flag sets it)
    monkeypatch.setenv("DERIVE_ANSWER_TIME_LIMIT", "5")
    spec = Path(__file__).resolve().parents[1] / "examples" / "gru-cell.yaml"
    answers = tmp_path / "a.yaml"
    answers.write_text("dL/dW_z: 0\n")
    args = [a.format(spec=spec, answers=answers, tmp=tmp_path) for a in argv]
    assert main(args + ["--time-limit", "0.001"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("derive: error: ") and err.count("\n") == 1
    assert err.rstrip("\n").endswith("time limit (raise it with --time-limit SECONDS)"), err
    assert os.environ["DERIVE_TIME_LIMIT"] == "0.001"
    assert main(args + ["--time-limit", "0"]) == 2
    assert capsys.readouterr().err == "derive: error: --time-limit: must be a positive number of seconds (below 1000000)\n"


def test_check_takes_the_answer_time_limit_flag(monkeypatch):
    from derive.commands._common import apply_time_limits
    from derive.cli import build_parser
    monkeypatch.setenv("DERIVE_ANSWER_TIME_LIMIT", "5")
    args = build_parser().parse_args(["check", "mlp-relu-regression", "a.yaml", "--answer-time-limit", "12.5"])
    apply_time_limits(args)
    assert budget.seconds(budget.ANSWER_SECONDS, budget.ANSWER_ENV) == 12.5
