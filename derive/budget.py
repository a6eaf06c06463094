"""One time-and-size budget for all user-driven symbolic and numeric work.

Every command that evaluates user text (``solve`` and ``codegen`` of a spec,
``check`` of an answer, ``variants``, the checking page of ``derive serve``)
runs that work inside :func:`limit`.  When the time runs out,
:class:`TimeLimitExceeded` is raised; it derives from ``BaseException`` on
purpose, so that no ``except Exception`` (or ``except ValueError``) between
here and SymPy's inner loops can swallow it and carry on.  Its message names
the phase, the limit and the command-line flag that raises it:

    judging one answer took longer than the 5 s time limit (raise it with --answer-time-limit SECONDS)

Sizes are bounded before any time is spent (see :mod:`derive.engine.parse` for
expressions); :func:`to_float` turns a SymPy number into a float without
overflow surprises, and the maxima of the command-line counts live here so
that the help, the docs and the checks read one number.

The limits use ``SIGALRM`` and so act in the main thread of a process; work
started from another thread (a web server's request handler) goes through
:func:`run_bounded`, which runs it in a child process and kills that child
when its time is up.

>>> with limit(5, "demo"):
...     to_float(sympy.Integer(2) ** 10)
1024.0
>>> to_float(sympy.exp(sympy.exp(sympy.exp(1000))))
Traceback (most recent call last):
...
ValueError: the value is too large to evaluate
"""
from __future__ import annotations

import math
import multiprocessing
import os
import signal
import sys
import threading
import time
from contextlib import contextmanager

import sympy

#: seconds, by phase; DERIVE_TIME_LIMIT (DERIVE_ANSWER_TIME_LIMIT for one answer) replaces them
SPEC_BUILD_SECONDS = 30      # reading and building a user's spec
SPEC_SOLVE_SECONDS = 60      # deriving, evaluating and checking it
CODEGEN_SECONDS = 60         # generating numpy code from a spec
ANSWER_SECONDS = 5           # judging one hand answer
CHECK_SECONDS = 600          # a whole `derive check` run (a class CSV included)
ENV = "DERIVE_TIME_LIMIT"                  # replaces every limit but the one per answer
ANSWER_ENV = "DERIVE_ANSWER_TIME_LIMIT"   # replaces ANSWER_SECONDS
FLAG = "--time-limit"                     # the commands' flag that sets ENV
ANSWER_FLAG = "--answer-time-limit"       # derive check's flag that sets ANSWER_ENV
_FLAG_OF = {ENV: FLAG, ANSWER_ENV: ANSWER_FLAG}


def how_to_raise(env: str = ENV) -> str:
    """What a time-out message tells the user to do: the flag of every command
    that can run out of time (the variable works too, and is named only when
    it has no flag).

    >>> how_to_raise(), how_to_raise(ANSWER_ENV)
    ('raise it with --time-limit SECONDS', 'raise it with --answer-time-limit SECONDS')
    """
    flag = _FLAG_OF.get(env)
    return f"raise it with {flag} SECONDS" if flag else f"raise it with {env}=SECONDS"

#: documented maxima of command-line counts
MAX_STEPS = 10_000           # solve --steps
MAX_COUNT = 1_000            # variants --count
MAX_JOBS = 64                # variants --jobs


class TimeLimitExceeded(BaseException):
    """User-driven work ran out of time.  ``phase`` says what was running,
    ``seconds`` the limit; ``str()`` is the one line a user reads."""

    def __init__(self, phase: str, seconds: float, frame=None, where: str = "", env: str = ENV):
        self.phase = phase
        self.where = where
        self.seconds = seconds
        self.frame = frame
        super().__init__(f"{phase} took longer than the {seconds:g} s time limit ({how_to_raise(env)})")


def seconds(default: float, env: str = ENV) -> float:
    """The limit of a phase: the environment variable ``env`` if set (a
    positive number of seconds), else ``default``."""
    raw = os.environ.get(env, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        from derive.errors import UserError
        raise UserError(env, f"expected a number of seconds, got {raw[:40]!r}") from None
    if not (0 < value < 1e6):
        from derive.errors import UserError
        raise UserError(env, "must be a number of seconds above 0 and below 1000000")
    return value


def check_environment() -> None:
    """Refuse a malformed DERIVE_TIME_LIMIT or DERIVE_ANSWER_TIME_LIMIT at
    the start of a command (UserError naming the variable)."""
    for env in (ENV, ANSWER_ENV):
        seconds(1, env)


class _Frame:
    def __init__(self, phase, limit_s, deadline, where, env):
        self.phase, self.seconds, self.deadline, self.where, self.env = phase, limit_s, deadline, where, env


_stack: list = []        # open limits of the main thread, outermost first


def _arm() -> None:
    if not _stack:
        signal.setitimer(signal.ITIMER_REAL, 0)
        return
    left = min(f.deadline for f in _stack) - time.monotonic()
    signal.setitimer(signal.ITIMER_REAL, max(left, 1e-3))


def _on_alarm(signum, frame):
    now = time.monotonic()
    expired = [f for f in _stack if f.deadline <= now + 1e-3]
    if not expired:          # woken early: wait for the nearest deadline
        _arm()
        return
    f = expired[0]           # the outermost expired limit is the one to report
    # Raised inside a garbage-collector callback or a __del__, the exception
    # is printed and dropped by Python: ring again shortly, so the limit
    # holds anyway (the limit's own clean-up cancels this when it ends).
    signal.setitimer(signal.ITIMER_REAL, 0.05)
    raise TimeLimitExceeded(f.phase, f.seconds, f, f.where, f.env)


def enforced() -> bool:
    """Whether :func:`limit` can interrupt work here (main thread, SIGALRM)."""
    return threading.current_thread() is threading.main_thread() and hasattr(signal, "SIGALRM")


@contextmanager
def limit(default_seconds: float, phase: str, where: str = "", env: str = ENV):
    """Bound the time of the enclosed work to ``default_seconds`` (or
    ``DERIVE_TIME_LIMIT``); nested limits each keep their own deadline.
    ``where`` (a file, say) is what the error line names; ``env`` the
    variable that raises the limit.
    Off the main thread this cannot interrupt anything; use
    :func:`run_bounded` there."""
    if not enforced():
        yield
        return
    limit_s = seconds(default_seconds, env)
    frame = _Frame(phase, limit_s, time.monotonic() + limit_s, where, env)
    # the bookkeeping runs with SIGALRM blocked: an alarm in the middle of it
    # would leave a stale frame behind (and a later, unrelated time-out)
    with _alarm_blocked():
        if not _stack:
            _previous.append((signal.signal(signal.SIGALRM, _on_alarm), sys.unraisablehook))
            sys.unraisablehook = _quiet
        _stack.append(frame)
        _arm()
    try:
        yield frame
    finally:
        with _alarm_blocked():
            _stack.remove(frame)
            if not _stack:
                signal.setitimer(signal.ITIMER_REAL, 0)
                if signal.SIGALRM in signal.sigpending():     # fired during the cleanup: drop it
                    signal.sigtimedwait({signal.SIGALRM}, 0)
                handler, sys.unraisablehook = _previous.pop()
                signal.signal(signal.SIGALRM, handler)
            else:
                _arm()          # an outer deadline already past fires right after


_previous: list = []     # the SIGALRM handler and unraisable hook before the outermost limit


def _quiet(unraisable):
    """A time-out dropped inside a garbage-collector callback is not news:
    it rings again (see _on_alarm); anything else is reported as usual."""
    if not isinstance(unraisable.exc_value, TimeLimitExceeded):
        _previous[0][1](unraisable)


@contextmanager
def _alarm_blocked():
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGALRM})


@contextmanager
def verdict_on_timeout(default_seconds: float, phase: str, on_timeout, env: str = ANSWER_ENV):
    """:func:`limit` for work whose time-out is an answer, not an error
    (judging one answer): if this limit (not an outer one) runs out,
    ``on_timeout(message)`` is called and the block ends quietly."""
    try:
        with limit(default_seconds, phase, env=env) as frame:
            yield
    except TimeLimitExceeded as exc:
        if exc.frame is not frame:
            raise
        on_timeout(str(exc))


def bounded(default_seconds: float, phase: str, fallback):
    """Decorator: run the function under :func:`limit`; when its own limit
    runs out, return ``fallback(message, *args, **kwargs)`` instead."""
    def wrap(fn):
        def inner(*args, **kwargs):
            out = []
            with verdict_on_timeout(default_seconds, phase,
                                    lambda msg: out.append(fallback(msg, *args, **kwargs))):
                return fn(*args, **kwargs)
            return out[0]
        inner.__name__, inner.__doc__, inner.__wrapped__ = fn.__name__, fn.__doc__, fn
        return inner
    return wrap


#: |log10| of the largest number worth evaluating (a double holds about 308)
MAX_LOG10 = 400


def to_float(value) -> float:
    """A SymPy (or Python) number as a float; ``ValueError`` when it is not a
    finite real number, including values too large for a float (instead of
    ``OverflowError`` from mpmath or an endless evaluation of a tower).

    >>> to_float(sympy.Rational(3, 16)), to_float(2.5)
    (0.1875, 2.5)
    """
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        v = float(value)
    else:
        expr = sympy.sympify(value) if not isinstance(value, sympy.Basic) else value
        if expr.free_symbols:
            raise ValueError("the value still contains names")
        try:
            v = float(sympy.N(expr))
        except (OverflowError, RecursionError, MemoryError):
            raise ValueError("the value is too large to evaluate") from None
        except (TypeError, ValueError):
            raise ValueError("the value is not a real number") from None
    if math.isnan(v):
        raise ValueError("the value is undefined")
    if math.isinf(v):
        raise ValueError("the value is too large to evaluate")
    return v


def run_bounded(fn, args=(), default_seconds: float = CHECK_SECONDS, phase: str = "the request"):
    """``fn(*args)`` in a child process killed after its time limit: the
    bound for work started off the main thread (a request of ``derive
    serve``).  Returns fn's (picklable) result; raises TimeLimitExceeded,
    or the child's exception if it raised one."""
    limit_s = seconds(default_seconds, ENV)
    ctx = multiprocessing.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(child, fn, args), daemon=True)
    proc.start()
    child.close()
    try:
        if not parent.poll(limit_s):
            raise TimeLimitExceeded(phase, limit_s)
        ok, payload = parent.recv()
    finally:
        if proc.is_alive():
            proc.kill()
        proc.join()
        parent.close()
    if ok:
        return payload
    raise payload


def _child(conn, fn, args):
    try:
        result = (True, fn(*args))
    except BaseException as exc:  # noqa: BLE001 - handed back to the parent whole
        result = (False, exc)
    try:
        conn.send(result)
    except Exception as exc:  # noqa: BLE001 - an unpicklable result or exception
        conn.send((False, RuntimeError(f"{type(exc).__name__}: {exc}")))
    conn.close()


__all__ = ["ANSWER_SECONDS", "CHECK_SECONDS", "CODEGEN_SECONDS", "check_environment", "MAX_COUNT", "MAX_JOBS", "MAX_STEPS", "SPEC_BUILD_SECONDS",
           "SPEC_SOLVE_SECONDS", "TimeLimitExceeded", "bounded", "enforced", "limit", "run_bounded",
           "seconds", "to_float", "verdict_on_timeout"]
