"""``derive serve``: the checking page and its JSON API over HTTP.

Python's standard ``http.server`` (a ``ThreadingHTTPServer``) is all this
needs: a handful of routes, JSON in and out, static files, on localhost for
a class; a web framework would add a dependency and a server to learn for
no feature used here. The server is stateless: every answer is computed
from the request (and the roster, read at start).

Routes:

* ``GET /api/problems``: ``{"problems": [{"id", "title", "source"}], "roster": bool,
  "roster_target": the problem the roster's variants are of, or null}``;
* ``GET /api/problem/ID[?student=SID|?variant=N]``: the question (``statement_html``,
  maths as MathML), the asked quantities with their LaTeX and MathML;
* ``GET /api/student/SID``: ``{"id", "variant"}`` (with ``--roster``);
* ``POST /api/check``: ``{"target", "answers", "values"?, "student"?, "variant"?}`` ->
  the JSON of ``derive check --format json``;
* ``POST /api/preview``: ``{"target", "text"}`` -> how derive reads one answer;
* ``GET /`` and ``GET /NAME``: the checking page's files from ``derive/web/``.

Bad input answers 400 with ``{"error": "WHERE: WHAT"}``; nothing answers with
a traceback (a bug is logged on stderr and answered 500). Every request is
bounded: the request line and headers by ``http.server``, the body by
:data:`derive.serve.api.MAX_BODY` and :data:`READ_SECONDS`, the work by the
worker pool's time limit (:mod:`derive.serve.workers`), the connections by
:data:`MAX_CONNECTIONS`.
"""
from __future__ import annotations

import json
import re
import socket
import sys
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from derive.serve.api import MAX_BODY, ApiError, parse_body
from derive.serve.workers import Busy, Crashed, Pool, TimedOut

#: the checking page's files
WEB_DIR = Path(__file__).resolve().parent.parent / "web"
#: a whole request body must arrive within this many seconds
READ_SECONDS = 10.0
#: an idle connection is closed after this many seconds
IDLE_SECONDS = 15.0
#: a request's line and headers must arrive within this many seconds of the
#: connection being ready for it (a slow sender is cut off, not waited for)
HEAD_SECONDS = 15.0
#: an oversized body up to this size is read and dropped before the 400 (beyond, the
#: connection is closed unread, and the client may see a reset instead of the answer)
DRAIN_BYTES = 4 * 1024 * 1024
#: connections handled at once; more are closed at once
MAX_CONNECTIONS = 64
#: the checking page's start file (written by the web front end)
START_PAGE = "check.html"
CONTENT_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                 ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml", ".png": "image/png",
                 ".json": "application/json", ".woff2": "font/woff2", ".ico": "image/x-icon"}
_STATIC_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*(/[A-Za-z0-9_][A-Za-z0-9_.-]*)*")

#: served at / when the checking page is not installed: enough to use the API by hand
FALLBACK_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>derive check</title></head>
<body><h1>derive check</h1>
<p>The checking page is not installed; the API answers at <code>POST /api/check</code>.</p>
<form id="f"><p><label>problem <input name="target" value="mlp-relu-regression"></label></p>
<p><label>answers (JSON)<br><textarea name="answers" rows="6" cols="60">{"w1": "0.1875"}</textarea></label></p>
<p><button>check</button></p></form><pre id="out"></pre>
<script>
document.getElementById("f").onsubmit = async (e) => {
  e.preventDefault();
  const f = e.target, out = document.getElementById("out");
  let answers;
  try { answers = JSON.parse(f.answers.value); } catch (err) { out.textContent = String(err); return; }
  const r = await fetch("/api/check", {method: "POST", headers: {"Content-Type": "application/json"},
                                       body: JSON.stringify({target: f.target.value, answers})});
  out.textContent = JSON.stringify(await r.json(), null, 2);
};
</script></body></html>
"""


class App:
    """What the handlers share: the worker pool, the problems, the roster."""

    def __init__(self, pool: Pool, roster=None, web_dir: Path = WEB_DIR):
        from derive.problems import builtins

        self.pool = pool
        self.roster = roster
        self.web_dir = Path(web_dir)
        self.problems = [p.listing() for p in builtins()]
        if roster is not None:
            roster.target            # found once, at start


class Handler(BaseHTTPRequestHandler):
    server_version = "derive"
    sys_version = ""
    protocol_version = "HTTP/1.1"
    timeout = IDLE_SECONDS

    def setup(self):
        super().setup()
        # headers and body leave in two writes; with Nagle's algorithm the second
        # waits for the client's delayed ACK, some 40 ms per request
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    # -- answering --------------------------------------------------------

    def _send(self, status: int, body: bytes, content_type: str, extra: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, data) -> None:
        self._send(status, json.dumps(data, indent=1).encode("utf-8"), "application/json; charset=utf-8")

    def _error(self, status: int, message: str) -> None:
        self._json(status, {"error": message})

    def log_message(self, format, *args):  # noqa: A002 - http.server's name
        line = format % args
        sys.stderr.write(f"derive serve: {self.address_string()} {line.encode('ascii', 'backslashreplace').decode()}\n")

    def send_error(self, code, message=None, explain=None):
        # http.server's own errors (a bad request line, headers too long) as JSON too,
        # with a status line even when the request line was unreadable
        self.close_connection = True
        self.request_version = self.protocol_version
        try:
            self._error(int(code), f"request: {message or HTTPStatus(code).phrase}")
        except OSError:
            pass

    # -- routes -----------------------------------------------------------

    @property
    def app(self) -> App:
        return self.server.app

    def _cut_off(self):
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def parse_request(self):
        ok = super().parse_request()        # reads the headers
        self._head_timer.cancel()
        return ok

    def handle_one_request(self):
        # socket timeouts bound each read, not a request sent a byte at a time
        self._head_timer = threading.Timer(HEAD_SECONDS, self._cut_off)
        self._head_timer.daemon = True
        self._head_timer.start()
        try:
            super().handle_one_request()
        except (OSError, TimeoutError):
            self.close_connection = True       # the client went away
        except Exception:  # noqa: BLE001 - a bug: logged here, never sent to the client
            import traceback

            sys.stderr.write(f"derive serve: a request failed:\n{traceback.format_exc()}")
            self.close_connection = True
            try:
                self._error(500, "server: internal error (logged on the server)")
            except OSError:
                pass
        finally:
            self._head_timer.cancel()

    def do_GET(self):  # noqa: N802 - http.server's name
        url = urlsplit(self.path)
        path = unquote(url.path)
        try:
            query = parse_qs(url.query, max_num_fields=4)
        except ValueError:
            return self._error(400, "request: too many query fields")
        if path == "/api/problems":
            roster = self.app.roster
            return self._json(200, {"problems": self.app.problems, "roster": roster is not None,
                                    "roster_target": roster.target if roster is not None else None})
        if path.startswith("/api/problem/"):
            target = path[len("/api/problem/"):]
            student = (query.get("student") or [None])[0]
            variant = (query.get("variant") or [None])[0]
            return self._call("problem", {"target": target, "student": student, "variant": variant})
        if path.startswith("/api/student/"):
            try:
                if self.app.roster is None:
                    raise ApiError("student", "this server has no roster (start it with --roster FILE)")
                sid = path[len("/api/student/"):]
                return self._json(200, {"id": sid, "variant": self.app.roster.variant_of(sid)})
            except ApiError as exc:
                return self._error(400, str(exc))
        if path.startswith("/api/"):
            return self._error(404, f"{path[:80]}: no such API (GET /api/problems, GET /api/problem/ID, "
                                    "POST /api/check, POST /api/preview)")
        return self._static(path)

    do_HEAD = do_GET

    def do_POST(self):  # noqa: N802
        path = urlsplit(self.path).path
        ops = {"/api/check": "check", "/api/preview": "preview"}
        if path not in ops:
            self._discard_body()
            return self._error(404, f"{path[:80]}: no such API (POST /api/check, POST /api/preview)")
        try:
            payload = parse_body(self._read_body())
        except ApiError as exc:
            return self._error(400, str(exc))
        self._call(ops[path], payload)

    def _call(self, op: str, payload) -> None:
        try:
            return self._json(200, self.app.pool.call(op, payload))
        except ApiError as exc:
            return self._error(400, str(exc))
        except TimedOut as exc:
            return self._error(400, f"request: {exc}")
        except Busy:
            return self._error(503, "server: every worker is busy; try again")
        except Crashed as exc:
            sys.stderr.write(f"derive serve: a request failed:\n{exc}\n")
            return self._error(500, "server: internal error (logged on the server)")

    # -- the body ---------------------------------------------------------

    def _discard_body(self) -> None:
        self.close_connection = True

    def _read_body(self) -> bytes:
        """The request body, within :data:`MAX_BODY` bytes and :data:`READ_SECONDS`."""
        if self.headers.get("Transfer-Encoding"):
            self.close_connection = True
            raise ApiError("request", "send the body with a Content-Length, not chunked")
        raw = self.headers.get("Content-Length")
        if raw is None or not raw.strip().isdigit():
            self.close_connection = True
            raise ApiError("request", "a Content-Length header is required")
        length = int(raw)
        if length > MAX_BODY:
            self.close_connection = True
            if length <= DRAIN_BYTES:
                self._read(length, keep=False)    # so the client reads our answer, not a reset
            raise ApiError("request", f"the body is larger than {MAX_BODY // 1024} KiB")
        return self._read(length)

    def _read(self, length: int, keep: bool = True) -> bytes:
        deadline = time.monotonic() + READ_SECONDS
        chunks, got = [], 0
        while got < length:
            if time.monotonic() > deadline:
                self.close_connection = True
                raise ApiError("request", f"the body took longer than {READ_SECONDS:g} s to arrive")
            chunk = self.rfile.read1(min(65536, length - got))
            if not chunk:
                self.close_connection = True
                raise ApiError("request", "the body ended before its Content-Length")
            if keep:
                chunks.append(chunk)
            got += len(chunk)
        return b"".join(chunks)

    # -- static files -----------------------------------------------------

    def _static(self, path: str) -> None:
        web = self.app.web_dir
        if path in ("", "/"):
            if (web / START_PAGE).is_file():
                return self._send(302, b"", "text/plain", {"Location": "/" + START_PAGE})
            return self._send(200, FALLBACK_PAGE.encode("utf-8"), CONTENT_TYPES[".html"])
        name = path.lstrip("/")
        file = web / name
        if (not _STATIC_NAME.fullmatch(name) or ".." in name.split("/") or not file.is_file()
                or file.suffix not in CONTENT_TYPES):
            return self._error(404, f"{path[:80]}: no such page")
        self._send(200, file.read_bytes(), CONTENT_TYPES[file.suffix])


class Server(ThreadingHTTPServer):
    """A threading HTTP server that refuses connections past :data:`MAX_CONNECTIONS`."""

    daemon_threads = True

    def __init__(self, address, app: App, max_connections: int = MAX_CONNECTIONS):
        self.app = app
        self._slots = threading.BoundedSemaphore(max_connections)
        super().__init__(address, Handler)

    def process_request(self, request, client_address):
        if not self._slots.acquire(blocking=False):
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()


def make_server(host: str = "127.0.0.1", port: int = 8000, *, roster_path=None, workers: int = 2,
                seconds: float = 10.0, web_dir: Path = WEB_DIR, warm: bool = False) -> Server:
    """A bound server (not yet serving); ``port`` 0 picks a free port;
    ``warm``: workers start with the gradient built-ins solved (``derive
    serve`` does this). Close it with :func:`close`."""
    from derive.serve.api import Roster

    roster = Roster(roster_path) if roster_path else None
    pool = Pool(workers, seconds, roster_path, warm=warm)
    try:
        return Server((host, port), App(pool, roster, web_dir))
    except BaseException:
        pool.close()
        raise


def close(server: Server) -> None:
    """Stop serving and end the worker processes."""
    server.shutdown()
    server.server_close()
    server.app.pool.close()
