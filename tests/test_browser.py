"""The web pages in a real browser: Debian's Chromium, driven by Playwright.

Playwright drives the system's Chromium (``executable_path``); nothing
downloads a browser. install.sh installs Chromium from Debian's packages and
Playwright comes with the test extras; where either is missing the tests are
skipped and say which. Set ``DERIVE_SHOTS=DIR`` to keep screenshots of what
the tests saw.
"""
import os
import shutil
from pathlib import Path

import pytest

from derive import blocks as B
from derive import cli

CANDIDATES = ("chromium", "chromium-browser", "google-chrome")


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
        yield b
        b.close()


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
    from derive.key import select

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
