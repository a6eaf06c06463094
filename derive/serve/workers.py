"""Worker processes that run the checking server's requests, each bounded in time.

A check parses and judges user text; derive's parser bounds its size and
exponents, and a request's values bound the work of a built-in, but a
server must not rely on every path being fast. Python cannot stop a
thread, and ``SIGALRM`` (the CLI's :func:`derive.budget.limit`) works only
in a process's main thread, so each request runs in a worker process, under
that same limit in its main thread; a worker that does not stop by itself
(work in C that no signal interrupts) is killed and replaced by a fresh one.
Workers are forked from a ``forkserver`` that has imported derive once, so
a replacement is ready in milliseconds; each worker keeps the problems it
solved (:func:`derive.serve.api.solved`), so a check of a warm problem costs
only the check.

>>> pool = Pool(workers=1, seconds=5)
>>> pool.call("check", {"target": "mlp-relu-regression", "answers": {"w1": "0.1875"}})["summary"]["correct"]
1
>>> pool.close()
"""
from __future__ import annotations

import multiprocessing as mp
import queue
import threading
import traceback

#: how long a request waits for a free worker before the server answers 503
QUEUE_WAIT = 10.0
#: a worker that has not stopped itself this long after its time limit is killed
GRACE = 2.0


class Busy(RuntimeError):
    """No worker became free in time."""


class TimedOut(RuntimeError):
    """The request ran past its time; its worker was killed."""


class Crashed(RuntimeError):
    """A worker failed on a request (a bug): the traceback, for the server's log."""


def _context():
    methods = mp.get_all_start_methods()
    if "forkserver" in methods:
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(["derive.serve.api", "derive.grading.verdicts", "derive.problems"])
        return ctx
    return mp.get_context("spawn")


def _worker_main(conn, roster_path, warm: bool = False, seconds: float = 10.0) -> None:
    """A worker: answer ``(op, payload)`` messages until ``None`` or EOF,
    each within ``seconds`` (:func:`derive.budget.limit`, the CLI's
    limit, here in the worker's main thread); ``warm``: first solve the
    gradient built-ins (a request meanwhile waits)."""
    from derive.serve import api as webapi
    from derive.budget import TimeLimitExceeded, limit

    roster = webapi.Roster(roster_path) if roster_path else None
    if warm:
        webapi.warm(roster.target if roster is not None else None)
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg is None:
            return
        op, payload = msg
        try:
            with limit(seconds, "the request"):
                reply = ("ok", webapi.handle(op, payload, roster))
        except TimeLimitExceeded as exc:
            reply = ("error", f"request: {timed_out(exc.seconds)}")
        except webapi.ApiError as exc:
            reply = ("error", str(exc))
        except Exception as exc:  # noqa: BLE001 - answer as data, the server decides
            err = webapi.as_user_error(exc)
            reply = ("error", str(err)) if err is not None else ("bug", traceback.format_exc())
        try:
            conn.send(reply)
        except (EOFError, OSError):
            return


def timed_out(seconds: float) -> str:
    return f"took longer than {seconds:g} s; give shorter answers or smaller values"


class _Worker:
    def __init__(self, ctx, roster_path, warm: bool, seconds: float):
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_worker_main, args=(child, roster_path, warm, seconds), daemon=True,
                                   name="derive-serve-worker")
        self.process.start()
        child.close()

    def stop(self, kill: bool = False) -> None:
        if not kill:
            try:
                self.conn.send(None)
            except (EOFError, OSError):
                pass
            self.process.join(1)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(5)
        self.conn.close()


class Pool:
    """``workers`` processes; :meth:`call` runs one operation on a free one
    within ``seconds``. ``warm``: each worker first solves the gradient
    built-ins (a few seconds at its start, then every first check is fast)."""

    def __init__(self, workers: int = 2, seconds: float = 10.0, roster_path=None, warm: bool = False):
        self.seconds = seconds
        self._ctx = _context()
        self._warm = warm
        self._roster = str(roster_path) if roster_path else None
        self._idle: queue.Queue = queue.Queue()
        self._lock = threading.Lock()
        self._all: list = []
        self._closed = False
        for _ in range(workers):
            self._idle.put(self._start())

    def _start(self) -> _Worker:
        w = _Worker(self._ctx, self._roster, self._warm, self.seconds)
        with self._lock:
            self._all.append(w)
        return w

    def _retire(self, w: _Worker) -> None:
        w.stop(kill=True)
        with self._lock:
            if w in self._all:
                self._all.remove(w)
            closed = self._closed
        if not closed:
            self._idle.put(self._start())

    def call(self, op: str, payload) -> dict:
        """The result of ``op``; :class:`derive.serve.api.ApiError` for bad
        input, :class:`Busy`, :class:`TimedOut` or :class:`Crashed`."""
        from derive.serve.api import ApiError

        try:
            w = self._idle.get(timeout=QUEUE_WAIT)
        except queue.Empty:
            raise Busy("every worker is busy") from None
        try:
            w.conn.send((op, payload))
            # the worker stops itself at ``seconds``; past the grace it is killed
            if not w.conn.poll(self.seconds + GRACE):
                self._retire(w)
                raise TimedOut(timed_out(self.seconds))
            status, body = w.conn.recv()
        except (EOFError, OSError, BrokenPipeError):
            self._retire(w)
            raise Crashed("the worker process ended") from None
        self._idle.put(w)
        if status == "ok":
            return body
        if status == "error":
            where, sep, what = body.partition(": ")
            raise ApiError(where, what) if sep else ApiError("", body)
        raise Crashed(body)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            workers, self._all = list(self._all), []
        for w in workers:
            w.stop()
