"""The web pages in a real browser: Debian's Chromium, driven by Playwright.

Playwright drives the system's Chromium (``executable_path``); nothing
downloads a browser. install.sh installs Chromium from Debian's packages and
Playwright comes with the test extras; where either is missing the tests are
skipped and say which. Set ``DERIVE_SHOTS=DIR`` to keep screenshots of what
the tests saw.
"""
import contextlib
import os
import re
import select
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from derive.typeset import blocks as B
from derive import cli

CANDIDATES = ("chromium", "chromium-browser", "google-chrome")
#: how long a page waits for an element or an answer (ms)
WAIT_MS = 120_000


def _chromium() -> str | None:
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api",
                                   reason="Playwright is not installed (pip install -e '.[test]' installs it)")
    path = _chromium()
    if path is None:
        pytest.skip("no Chromium on this machine (install.sh installs Debian's chromium package)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=path)
        yield _Patient(b)
        b.close()


class _Patient:
    """The browser, whose pages wait up to :data:`WAIT_MS` for what they
    expect: on a loaded machine (2 cores, the whole suite running) a check
    can take longer than Playwright's default 30 s."""

    def __init__(self, browser):
        self._browser = browser

    def new_page(self, **kwargs):
        page = self._browser.new_page(**kwargs)
        page.set_default_timeout(WAIT_MS)
        return page


def _shot(page, name):
    folder = os.environ.get("DERIVE_SHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / name), full_page=True)


@pytest.fixture(scope="module")
def key_html(tmp_path_factory):
    if shutil.which("pdflatex") is None or shutil.which("pdftocairo") is None:
        pytest.skip("TeX Live / poppler not installed (install.sh installs them): the figures need them")
    out = tmp_path_factory.mktemp("key-html")
    ids = ["mlp-relu-regression", "interpolated-ap"]
    assert cli.main(["key", "--format", "html", "--out", str(out)] + [a for i in ids for a in ("--only", i)]) == 0
    from derive.document.key import select

    figures = sum(isinstance(b, B.Figure) for p in select(ids) for b in p.solve().blocks())
    return out / "answer-key.html", figures


def test_html_key_renders_mathml_and_svg_and_loads_nothing(browser, key_html):
    path, figures = key_html
    page = browser.new_page(viewport={"width": 1000, "height": 900})
    requests = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(path.as_uri())
    assert requests == [path.as_uri()]              # the page itself and nothing else
    refs = page.eval_on_selector_all("[src], [href]",
                                     "els => els.map(e => e.getAttribute('src') || e.getAttribute('href'))")
    assert [r for r in refs if r.startswith(("http:", "https:", "//"))] == []
    assert [r for r in refs if not r.startswith("#")] == []
    # maths is MathML the browser lays out: a fraction is taller than it is flat
    assert page.locator("math").count() > 100
    frac = page.locator(".equations mfrac").first.bounding_box()
    assert frac["height"] > 25 and frac["width"] > 5
    # every figure is an inline SVG with a drawing in it
    svgs = page.locator("figure.figure svg")
    assert svgs.count() == figures >= 2
    for k in range(figures):
        box = svgs.nth(k).bounding_box()
        assert box["width"] > 100 and box["height"] > 50
    assert page.locator("#problem-mlp-relu-regression h2").inner_text().endswith("Two-layer ReLU regression net, one SGD step")
    _shot(page, "answer-key.png")
    page.close()


@contextlib.contextmanager
def _serve(*args):
    """``derive serve`` on 127.0.0.1, a free port: its base URL; stopped after."""
    proc = subprocess.Popen([sys.executable, "-m", "derive", "serve", "--host", "127.0.0.1", "--port", "0",
                             *args], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        ready = select.select([proc.stdout], [], [], 120)[0]
        line = proc.stdout.readline() if ready else ""
        match = re.search(r"http://[\d.]+:\d+/", line)
        assert match, f"derive serve did not say where it listens: {line!r}"
        yield match.group(0)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def server():
    with _serve() as url:
        yield url


def _verdicts(page) -> dict:
    """name -> (verdict, message) as the page shows them."""
    out = {}
    for row in page.locator("#rows tr").all():
        badge = row.locator(".verdict .badge")
        if badge.count():
            message = row.locator(".verdict .message")
            out[row.get_attribute("data-name")] = (badge.inner_text(),
                                                   message.inner_text() if message.count() else "")
    return out


def test_checking_page_judges_a_right_and_a_wrong_answer(browser, server):
    from derive.grading.verdicts import check
    from derive.problems import load

    page = browser.new_page(viewport={"width": 1100, "height": 900})
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    outside = []
    page.on("request", lambda r: None if r.url.startswith(server) else outside.append(r.url))
    page.goto(server + "check.html")
    page.locator('#problem option[value="mlp-relu-regression"]').wait_for(state="attached")
    page.select_option("#problem", "mlp-relu-regression")
    page.wait_for_selector('#rows input[data-name="dL/dw5"]')
    assert page.locator("#statement math").count() > 5           # the question, typeset
    assert page.locator("#statement figure svg").count() == 1     # with the network drawn
    answers = {"dL/dw5": "(o1 - y)*a1", "w1": "0.1875", "dL/dw1": "0.175"}
    for name, text in answers.items():
        page.fill(f'#rows input[data-name="{name}"]', text)
    # the live preview shows the formula as derive reads it, typeset
    preview = page.locator('#rows tr[data-name="dL/dw5"] .preview math')
    preview.wait_for()
    assert "a" in preview.text_content() and "y" in preview.text_content()
    page.click("#check")
    # (the page's Content-Security-Policy forbids eval, so no wait_for_function)
    page.locator("#rows .verdict .badge").nth(len(answers) - 1).wait_for()
    shown = _verdicts(page)
    # the page shows what derive check itself says of the same answers
    expected = check(load("mlp-relu-regression").solve(), answers, target="mlp-relu-regression")
    assert shown == {i["name"]: (i["verdict"], i["message"]) for i in expected["items"]}
    assert shown["dL/dw5"][0] == "correct" and shown["w1"][0] == "correct"
    assert shown["dL/dw1"][0] == "incorrect" and "sign" in shown["dL/dw1"][1]
    assert page.inner_text("#summary") == "2/3 accepted"
    assert errors == [] and outside == []
    _shot(page, "check-right-and-wrong.png")
    page.close()


def test_checking_page_shows_a_bad_request_as_one_line(browser, server):
    page = browser.new_page()
    page.goto(server + "check.html#mlp-relu-regression")
    page.wait_for_selector('#rows input[data-name="w1"]')
    page.fill('#rows input[data-name="w1"]', "(((")
    page.locator('#rows tr[data-name="w1"] .preview .error').wait_for()
    page.click("#check")
    page.wait_for_selector('#rows .verdict[data-name="w1"] .badge')
    assert _verdicts(page)["w1"][0] == "unparseable"
    page.close()


def test_a_student_of_the_roster_checks_their_own_variant(browser, tmp_path):
    import yaml

    roster = tmp_path / "class.csv"
    roster.write_text("id\nann\nbob\n", encoding="utf-8")
    out = tmp_path / "v"
    assert cli.main(["variants", "mlp-relu-regression", "--count", "2", "--seed", "5", "--out", str(out),
                     "--no-pdf", "--jobs", "1", "--roster", str(roster)]) == 0
    dealt = dict(line.split(",")[:2] for line in (out / "roster.csv").read_text().split()[1:])
    number = int(dealt["bob"])
    values = yaml.safe_load((out / f"variant-{number:02d}" / "values.yaml").read_text())
    key = yaml.safe_load((out / f"variant-{number:02d}" / "answers.yaml").read_text())
    with _serve("--roster", str(out / "roster.csv")) as url:
        page = browser.new_page(viewport={"width": 1100, "height": 900})
        page.goto(url + "check.html")
        page.select_option("#problem", "mlp-relu-regression")
        page.wait_for_selector('#rows input[data-name="w1"]')
        page.fill("#student", "bob")
        page.click("#load")
        page.locator("#source", has_text=f"Your variant: number {number}.").wait_for()
        statement = page.locator("#statement").text_content().replace("\u2212", "-")
        assert str(values["w1"]) in statement           # bob's own numbers
        page.fill('#rows input[data-name="w1"]', str(key["w1"]))
        page.fill('#rows input[data-name="dL/dw1"]', str(-key["dL/dw1"]) if key["dL/dw1"] else "1")
        page.click("#check")
        page.locator("#rows .verdict .badge").nth(1).wait_for()
        shown = _verdicts(page)
        assert shown["w1"][0] == "correct" and shown["dL/dw1"][0] == "incorrect"
        _shot(page, "check-roster-variant.png")
        page.close()


def test_a_variant_is_picked_by_its_number(browser, tmp_path):
    import yaml

    roster = tmp_path / "class.csv"
    roster.write_text("id\nann\nbob\n", encoding="utf-8")
    out = tmp_path / "v"
    assert cli.main(["variants", "mlp-relu-regression", "--count", "2", "--seed", "5", "--out", str(out),
                     "--no-pdf", "--jobs", "1", "--roster", str(roster)]) == 0
    values = yaml.safe_load((out / "variant-02" / "values.yaml").read_text())
    key = yaml.safe_load((out / "variant-02" / "answers.yaml").read_text())
    with _serve("--roster", str(out / "roster.csv")) as url:
        page = browser.new_page(viewport={"width": 1100, "height": 900})
        page.goto(url + "check.html")
        page.select_option("#problem", "mlp-relu-regression")
        page.wait_for_selector('#rows input[data-name="w1"]')
        page.fill("#variant", "2")
        page.click("#load")
        page.locator("#source", has_text="Variant 2.").wait_for()
        statement = page.locator("#statement").text_content().replace("\u2212", "-")
        assert str(values["w1"]) in statement           # variant 2's own numbers
        page.fill('#rows input[data-name="w1"]', str(key["w1"]))
        page.click("#check")
        page.locator("#rows .verdict .badge").first.wait_for()
        assert _verdicts(page)["w1"][0] == "correct"
        _shot(page, "check-variant-number.png")
        page.close()
