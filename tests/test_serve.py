"""derive serve: the JSON API over real HTTP on 127.0.0.1 (port 0, a thread),
with right, wrong, malformed, oversized, hostile and slow requests, the
roster, the problem and preview routes and the static files."""
import http.client
import json
import threading
import time

import pytest
import yaml

from derive import cli
from derive.grading.verdicts import check
from derive.problems import builtins, load
from derive.serve.server import close, make_server
from derive.document.variants import answers_of
from derive.serve.api import MAX_BODY

RELU = "mlp-relu-regression"


def start(**kwargs):
    server = make_server("127.0.0.1", 0, **kwargs)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture(scope="module")
def server():
    s = start(workers=2, seconds=10)
    yield s
    close(s)


def request(server, method, path, body=None, headers=None):
    host, port = server.server_address[:2]
    conn = http.client.HTTPConnection(host, port, timeout=30)
    try:
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        data = r.read()
        ctype = r.getheader("Content-Type", "")
        return r.status, (json.loads(data) if ctype.startswith("application/json") else data)
    finally:
        conn.close()


def post_check(server, payload):
    return request(server, "POST", "/api/check", payload, {"Content-Type": "application/json"})


def key_answers():
    return answers_of(load(RELU).solve())


def test_binds_to_localhost_by_default():
    args = cli.build_parser().parse_args(["serve"])
    assert args.host == "127.0.0.1" and args.port == 8000


def test_right_answers_same_json_as_check(server):
    answers = {k: repr(v) for k, v in key_answers().items()}
    status, data = post_check(server, {"target": RELU, "answers": answers})
    assert status == 200
    assert data["summary"]["correct"] == data["summary"]["total"] == len(answers) == 29
    assert data == check(load(RELU).solve(), answers, target=RELU)    # the CLI's JSON


def test_wrong_answers_are_judged(server):
    status, data = post_check(server, {"target": RELU, "answers": {"dL/do1": 0.35, "dL/dw5": 0.105, "w1": 0.1}})
    assert status == 200
    verdicts = {i["name"]: i["verdict"] for i in data["items"]}
    assert verdicts == {"dL/do1": "incorrect", "dL/dw5": "carried-forward", "w1": "incorrect"}
    assert data["summary"]["incorrect"] == 2


def test_numbers_keep_the_digits_written(server):
    # 0.0613 is the loss 0.06125 rounded: the digits matter, so JSON numbers are read as text
    status, data = post_check(server, {"target": RELU, "answers": {"L": 0.0613}})
    assert status == 200 and data["items"][0]["given"] == "0.0613"
    assert data["items"][0]["verdict"] == "rounding"


def test_values_change_the_key(server):
    status, data = post_check(server, {"target": RELU, "answers": {"z1": 0.5}, "values": {"x1": 2, "x2": 1.5}})
    expected = load(RELU).solve({"x1": "2", "x2": "1.5"}).forward["z1"]
    assert status == 200 and data["items"][0]["expected"] == float(expected) == 0.5


@pytest.mark.parametrize("body, where", [
    (b'{"target": "mlp-relu-regression", "answers": {"w1": 0.1', "request: invalid JSON"),
    (b"\xff\xfe", "request: the body is not UTF-8"),
    (b'[1, 2]', "request: the body must be a JSON object"),
    (b'{"target": "mlp-relu-regression", "answers": {"w1": NaN}}', "request: NaN"),
    (b'{"target": "mlp-relu-regression", "answers": {"w1": 1, "w1": 2}}', "w1: key appears twice"),
    (b'{"target": "mlp-relu-regression", "answers": {}}', "answers: give a mapping"),
    (b'{"target": "mlp-relu-regression", "answers": {"w1": true}}', "answers: True is not an answer"),
    (b'{"target": "mlp-relu-regression", "answers": {"w1": 1}, "extra": 1}', "extra: unknown key"),
    (b'{"target": "mlp-relu-regression", "answers": {"w1": 1}, "values": {"x1": "abc"}}', "values"),
    (b'{"target": "mlp-relu-regression", "answers": {"w1": 1}, "values": {"nope": 1}}', "values"),
    (b'{"target": "no-such-problem", "answers": {"w1": 1}}', "target: unknown problem 'no-such-problem'"),
    (b'{"target": "examples/rnn-bptt.yaml", "answers": {"w1": 1}}', "target: unknown problem"),
    (b'{"target": "/etc/passwd", "answers": {"w1": 1}}', "target: unknown problem"),
    (b'{"answers": {"w1": 1}}', "target: give a problem id"),
])
def test_bad_input_is_400_with_where_and_what(server, body, where):
    status, data = request(server, "POST", "/api/check", body)
    assert status == 400
    assert set(data) == {"error"} and data["error"].startswith(where), data
    assert "Traceback" not in data["error"]


def test_oversized_body(server):
    body = json.dumps({"target": RELU, "answers": {"w1": "1" * (MAX_BODY + 10)}}).encode()
    status, data = request(server, "POST", "/api/check", body)
    assert status == 400 and data["error"] == f"request: the body is larger than {MAX_BODY // 1024} KiB"


def test_missing_length_and_chunked_bodies(server):
    host, port = server.server_address[:2]
    conn = http.client.HTTPConnection(host, port, timeout=10)
    conn.putrequest("POST", "/api/check")
    conn.putheader("Transfer-Encoding", "chunked")
    conn.endheaders()
    conn.send(b"5\r\nhello\r\n0\r\n\r\n")
    r = conn.getresponse()
    assert r.status == 400 and "not chunked" in json.loads(r.read())["error"]
    conn.close()
    conn = http.client.HTTPConnection(host, port, timeout=10)
    conn.putrequest("POST", "/api/check")
    conn.endheaders()
    r = conn.getresponse()
    assert r.status == 400 and "Content-Length" in json.loads(r.read())["error"]
    conn.close()


@pytest.mark.parametrize("answer", ["((9**64)**64)**64", "9**9**9**9", "(" * 500 + "1" + ")" * 500,
                                    "x" * 5000, r"\frac{" * 300 + "1" + "}" * 300, "(a1+o1+y)**64"])
def test_hostile_answers_come_back_bounded(server, answer):
    start_time = time.monotonic()
    status, data = post_check(server, {"target": RELU, "answers": {"w1": answer}})
    elapsed = time.monotonic() - start_time
    assert elapsed < 5, elapsed
    assert status == 200 and data["items"][0]["verdict"] in ("incorrect", "unparseable"), data
    assert len(json.dumps(data)) < 10_000


def test_hostile_values_are_refused(server):
    status, data = post_check(server, {"target": RELU, "answers": {"w1": 1}, "values": {"x1": "9**64**64"}})
    assert status == 400 and data["error"].startswith("values"), data


def test_a_slow_request_is_stopped_and_the_worker_replaced():
    s = start(workers=1, seconds=0.02)
    try:
        status, data = post_check(s, {"target": "lstm-cell", "answers": {"h": [0.1, 0.2]}})
        assert status == 400 and data["error"].startswith("request: took longer than 0.02 s"), data
        status, data = request(s, "GET", "/api/problems")
        assert status == 200
        status, data = post_check(s, {"target": RELU, "answers": {"w1": 1}})
        assert status in (200, 400) and ("items" in data or "took longer" in data["error"])
    finally:
        close(s)


def test_parallel_requests(server):
    answers = {k: repr(v) for k, v in key_answers().items()}
    results = []

    def one():
        results.append(post_check(server, {"target": RELU, "answers": answers}))

    threads = [threading.Thread(target=one) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [s for s, _ in results] == [200] * 8
    assert all(d["summary"]["correct"] == 29 for _, d in results)


def test_problems_and_problem(server):
    status, data = request(server, "GET", "/api/problems")
    assert status == 200 and data["roster"] is False and data["roster_target"] is None
    assert [p["id"] for p in data["problems"]] == [p.id for p in builtins()]
    status, data = request(server, "GET", f"/api/problem/{RELU}")
    assert status == 200 and data["id"] == RELU
    assert [q["name"] for q in data["quantities"]] == list(key_answers())
    assert r"\partial w_{1}" in next(q["latex"] for q in data["quantities"] if q["name"] == "dL/dw1")
    html = data["statement_html"]              # the givens: a table row per parameter, no answer boxes
    assert "<table>" in html and html.count("<td>parameter</td>") == 9 and "To find" not in html
    status, data = request(server, "GET", "/api/problem/nope")
    assert status == 400 and data["error"].startswith("target: unknown problem")
    status, data = request(server, "GET", "/api/nothing")
    assert status == 404 and "no such API" in data["error"]


def test_preview(server):
    status, data = request(server, "POST", "/api/preview", {"target": RELU, "text": "(o1 - y)*a1"})
    assert status == 200 and data["kind"] == "formula" and data["latex"] == r"a_{1} \left(o_{1} - y\right)"
    status, data = request(server, "POST", "/api/preview", {"target": RELU, "text": "0.1875"})
    assert data["kind"] == "number" and data["latex"] == "0.1875"
    status, data = request(server, "POST", "/api/preview", {"target": RELU, "text": "(o1 - "})
    assert status == 200 and data["kind"] == "error" and data["error"]


def test_static_files_and_traversal(server):
    status, body = request(server, "GET", "/")
    assert status in (200, 302)
    for path in ["/../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/.hidden", "/web/../server.py", "/server.py"]:
        status, data = request(server, "GET", path)
        assert status == 404, path


def test_roster_selects_the_students_variant(tmp_path):
    roster = tmp_path / "class.csv"
    roster.write_text("id\nann\nbob\ncy\n")
    out = tmp_path / "v"
    assert cli.main(["variants", RELU, "--count", "2", "--seed", "5", "--out", str(out), "--no-pdf",
                     "--jobs", "1", "--roster", str(roster)]) == 0
    dealt = {row.split(",")[0]: int(row.split(",")[1]) for row in (out / "roster.csv").read_text().split()[1:]}
    s = start(workers=1, seconds=10, roster_path=out / "roster.csv")
    try:
        status, data = request(s, "GET", "/api/problems")
        assert (data["roster"], data["roster_target"]) == (True, RELU)
        for sid, number in dealt.items():
            status, data = request(s, "GET", f"/api/student/{sid}")
            assert (status, data) == (200, {"id": sid, "variant": number})
            answers = yaml.safe_load((out / f"variant-{number:02d}" / "answers.yaml").read_text())
            status, data = post_check(s, {"target": RELU, "student": sid,
                                          "answers": {k: v for k, v in answers.items()}})
            assert status == 200 and data["variant"] == number
            assert data["summary"]["correct"] == data["summary"]["total"] == 29
            status, data = request(s, "GET", f"/api/problem/{RELU}?student={sid}")
            assert status == 200 and data["variant"] == number
        status, data = post_check(s, {"target": RELU, "student": "eve", "answers": {"w1": 1}})
        assert status == 400 and data["error"] == "student: not on the roster"
        status, data = post_check(s, {"target": RELU, "student": "ann", "answers": {"w1": 1}, "values": {"x1": 1}})
        assert status == 400 and data["error"].startswith("values:")
        status, data = post_check(s, {"target": "lstm-cell", "student": "ann", "answers": {"h": [1, 2]}})
        assert (status, data["error"]) == (400, f"student: the roster's variants are of {RELU}, not lstm-cell")
    finally:
        close(s)
    assert cli.main(["serve", "--roster", str(tmp_path / "nope.csv")]) == 2


def test_a_bug_is_500_without_a_traceback(capsys):
    s = start(workers=1, seconds=10)
    try:
        s.app.problems = [object()]          # not JSON: the handler fails
        status, data = request(s, "GET", "/api/problems")
        assert status == 500 and data == {"error": "server: internal error (logged on the server)"}
        assert "Traceback" in capsys.readouterr().err
    finally:
        close(s)


def test_a_malformed_request_line_is_json_400(server):
    import socket

    with socket.create_connection(server.server_address[:2], timeout=10) as sock:
        sock.sendall(b"NOT A REQUEST LINE AT ALL\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400") and b"application/json" in head
    assert json.loads(body)["error"].startswith("request: ")


def test_warm_solves_every_gradient_builtin_first():
    from derive.serve import api as webapi
    from derive.document.variants import is_gradient_problem

    webapi._SOLVED.clear()
    webapi.warm()
    assert {t for t, _ in webapi._SOLVED} == {p.id for p in builtins() if is_gradient_problem(p)}
    s = start(workers=1, seconds=30, warm=True)        # and a warm server answers as any other
    try:
        status, data = post_check(s, {"target": RELU, "answers": {"w1": "0.1875"}})
        assert status == 200 and data["items"][0]["verdict"] == "correct"
    finally:
        close(s)


def test_the_checking_page_is_served_from_the_web_folder(tmp_path):
    (tmp_path / "check.html").write_text("<!doctype html><p>the page</p>")
    (tmp_path / "check.js").write_text("console.log(1);")
    (tmp_path / "notes.txt").write_text("not served")
    s = start(workers=1, seconds=10, web_dir=tmp_path)
    try:
        host, port = s.server_address[:2]
        conn = http.client.HTTPConnection(host, port, timeout=10)
        conn.request("GET", "/")
        r = conn.getresponse()
        r.read()
        assert r.status == 302 and r.getheader("Location") == "/check.html"
        conn.request("GET", "/check.html")
        r = conn.getresponse()
        assert (r.status, r.read(), r.getheader("Content-Type")) == (
            200, b"<!doctype html><p>the page</p>", "text/html; charset=utf-8")
        conn.request("GET", "/check.js")
        r = conn.getresponse()
        assert r.status == 200 and r.read() == b"console.log(1);"
        assert r.getheader("X-Content-Type-Options") == "nosniff"
        conn.close()
        assert request(s, "GET", "/notes.txt")[0] == 404        # only page files
    finally:
        close(s)


def test_a_request_sent_a_byte_at_a_time_is_cut_off(server, monkeypatch):
    import socket

    from derive.serve import server as server_module

    monkeypatch.setattr(server_module, "HEAD_SECONDS", 1.0)
    with socket.create_connection(server.server_address[:2], timeout=10) as sock:
        t0 = time.monotonic()
        sock.sendall(b"GET /api/problems HTTP/1.1\r\n")
        closed = False
        for _ in range(40):                     # a header byte every 0.1 s, never finished
            try:
                sock.sendall(b"X")
                time.sleep(0.1)
            except OSError:
                closed = True
                break
        if not closed:
            closed = sock.recv(1024) == b""
        assert closed and time.monotonic() - t0 < 3.5


def test_a_worker_that_does_not_stop_is_killed_and_replaced():
    import os
    import signal

    from derive.serve.api import ApiError
    from derive.serve.workers import GRACE, Pool, TimedOut

    pool = Pool(workers=1, seconds=30)
    try:
        assert pool.call("check", {"target": RELU, "answers": {"w1": "0.1875"}})["summary"]["correct"] == 1
        stuck = pool._all[0].process
        os.kill(stuck.pid, signal.SIGSTOP)          # as if deep in C code, deaf to its own alarm
        pool.seconds = 0.5
        t0 = time.monotonic()
        with pytest.raises(TimedOut):
            pool.call("check", {"target": RELU, "answers": {"w1": "0.1875"}})
        assert time.monotonic() - t0 < 0.5 + GRACE + 2
        assert not stuck.is_alive()
        try:                                          # a fresh worker answers (within its 0.5 s, or says so)
            assert pool.call("check", {"target": RELU, "answers": {"w1": "0.1875"}})["summary"]["correct"] == 1
        except ApiError as exc:
            assert "took longer than 0.5 s" in str(exc)
    finally:
        pool.close()


def test_a_variant_is_picked_by_its_number(tmp_path):
    roster = tmp_path / "class.csv"
    roster.write_text("id\nann\nbob\n")
    out = tmp_path / "v"
    assert cli.main(["variants", RELU, "--count", "2", "--seed", "9", "--out", str(out), "--no-pdf",
                     "--jobs", "1", "--roster", str(roster)]) == 0
    s = start(workers=1, seconds=10, roster_path=out / "roster.csv")
    try:
        for number in (1, 2):
            answers = yaml.safe_load((out / f"variant-{number:02d}" / "answers.yaml").read_text())
            status, data = post_check(s, {"target": RELU, "variant": number, "answers": answers})
            assert status == 200 and data["variant"] == number
            assert data["summary"]["correct"] == data["summary"]["total"] == len(answers)
            other = yaml.safe_load((out / f"variant-{3 - number:02d}" / "answers.yaml").read_text())
            status, data = post_check(s, {"target": RELU, "variant": number, "answers": {"w1": other["w1"]}})
            assert status == 200 and data["items"][0]["verdict"] != "correct"     # another variant's number
            status, data = request(s, "GET", f"/api/problem/{RELU}?variant={number}")
            assert status == 200 and data["variant"] == number
        for bad, message in ((3, "variant: there are variants 1 to 2"), ("x", "variant: give a variant's number (1, 2, ...)"),
                             (True, "variant: give a variant's number (1, 2, ...)")):
            status, data = post_check(s, {"target": RELU, "variant": bad, "answers": {"w1": 1}})
            assert (status, data["error"]) == (400, message)
        status, data = post_check(s, {"target": RELU, "variant": 1, "student": "ann", "answers": {"w1": 1}})
        assert status == 400 and data["error"].startswith("variant: give a variant, a student or values")
    finally:
        close(s)
    s = start(workers=1, seconds=10)
    try:
        status, data = post_check(s, {"target": RELU, "variant": 1, "answers": {"w1": 1}})
        assert status == 400 and data["error"].startswith("variant: this server has no variants")
    finally:
        close(s)
