"""``derive serve``: the checking page and ``POST /api/check`` on a local web server."""
from __future__ import annotations

import sys


def add_parser(sub):
    p = sub.add_parser("serve", help="serve the checking page and its JSON API (POST /api/check)",
                       description="Serve the checking page (pick a problem, type answers, see each verdict) "
                                   "and its JSON API: POST /api/check with {\"target\": ID, \"answers\": {...}, "
                                   "\"values\": {...}} answers with the JSON of `derive check --format json`. "
                                   "Binds to 127.0.0.1 unless --host says otherwise.")
    p.add_argument("--host", default="127.0.0.1", metavar="H",
                   help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0: every interface)")
    p.add_argument("--port", type=_port, default=8000, metavar="P", help="port (default 8000; 0 picks a free one)")
    p.add_argument("--roster", metavar="FILE",
                   help="the roster.csv of `derive variants --roster`: a student id selects their own variant")
    p.add_argument("--workers", type=_positive("--workers"), default=2, metavar="N",
                   help="worker processes checking answers (default 2)")
    p.add_argument("--timeout", type=_positive("--timeout", float), default=10.0, metavar="S",
                   help="seconds one request may take (default 10)")
    p.set_defaults(run=run)


def _positive(flag, kind=int):
    from derive.errors import UserError

    def conv(text):
        try:
            v = kind(text)
        except ValueError:
            raise UserError(flag, f"expected a number, got {text!r}") from None
        if not v > 0:
            raise UserError(flag, "must be more than 0")
        return v
    return conv


def _port(text):
    from derive.errors import UserError

    if not text.isdigit() or int(text) > 65535:
        raise UserError("--port", f"expected a port number from 0 to 65535, got {text!r}")
    return int(text)


def run(args) -> int:
    from derive.errors import UserError
    from derive.serve.server import make_server

    try:
        server = make_server(args.host, args.port, roster_path=args.roster, workers=args.workers,
                             seconds=args.timeout, warm=True)
    except OSError as exc:
        raise UserError(f"--host {args.host} --port {args.port}", f"cannot listen ({exc.strerror or exc})") from None
    host, port = server.server_address[:2]
    shown = f"[{host}]" if ":" in host else host
    print(f"derive serve: http://{shown}:{port}/  (Ctrl-C stops)", flush=True)
    if host not in ("127.0.0.1", "::1", "localhost"):
        print(f"derive: serving on {host}: other machines can reach this server", file=sys.stderr)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        server.app.pool.close()
    return 0
