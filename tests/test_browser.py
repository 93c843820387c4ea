"""Browser checks of the built book: every page, as a reader's Chromium shows it.

Run by `make test` after the build (marker `browser`). For each HTML page of
``_build/html``, loaded over HTTP from a local server:

- no failed request, no console error beyond the allow-list;
- MathJax has typeset every formula (no raw TeX is left);
- every image has loaded, and its alt text is plain words: at most 400
  characters, no TeX, not cut off (it ends like a sentence);
- on a chapter page every figure in a cell output is numbered "Figure N.k";
- no cell shows its printed output split into several blocks (merged streams);
- axe-core (installed from the npm registry into node_modules, injected by the
  test: nothing is fetched) finds no critical and no serious violation, in the
  light theme and again after the reader switches to the dark theme with the
  theme's own button, which must log no console error.

A full-page screenshot of each page in light, and one of the first screen in
dark, are saved under ``_build/screenshots``. Moderate and minor axe findings
do not fail the test; they are listed at the end of the pytest run.
"""

import functools
import http.server
import json
import pathlib
import re
import shutil
import threading

import pytest
from test_notebooks import alt_problems, load, notebook_paths

pytestmark = pytest.mark.browser

ROOT = pathlib.Path(__file__).resolve().parent.parent
HTML = ROOT / "_build" / "html"
SHOTS = ROOT / "_build" / "screenshots"
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

# Jupyter Book 1 always loads sphinx-thebe 0.3.1, which under Sphinx 7.4 declares
# this constant twice; it is harmless (CONTRIBUTING.md, "Tests and CI"). Nothing
# else is allowed.
CONSOLE_ALLOW = ("Identifier 'THEBE_JS_URL' has already been declared",)

# axe-core findings of impact critical or serious that the project cannot fix with
# its CSS, templates or configuration: {(rule id, page): reason}. Empty today:
# every such finding on the current pages was fixed (see _static/book.css and
# _templates/). Add an entry only with the reason, and only for one page.
AXE_ALLOW: dict[tuple[str, str], str] = {}
AXE_FAILING_IMPACTS = ("critical", "serious")

# Flags for a closed network: no background fetches, no first-run pages.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def _pages():
    if not HTML.is_dir():
        return []
    return sorted(str(p.relative_to(HTML)) for p in HTML.rglob("*.html") if "_static" not in p.parts and "_sources" not in p.parts)


def _shot_name(page_path, suffix=""):
    return page_path.replace("/", "__").removesuffix(".html") + suffix + ".png"


@pytest.fixture(scope="module")
def server():
    handler = functools.partial(QuietHandler, directory=str(HTML))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


def test_book_was_built():
    assert (HTML / "intro.html").is_file(), "no built book: run `make build` first"
    assert len(_pages()) >= 4, f"too few pages built: {_pages()}"


def test_axe_is_installed():
    assert AXE.is_file(), "axe-core is missing: run `make assets` (npm ci installs it from package-lock.json)"


class PageLog:
    """What a page did while it loaded: console errors, failed requests."""

    def __init__(self, page):
        self.errors, self.failed = [], []
        page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("requestfailed", lambda r: self.failed.append(f"{r.url} ({r.failure})"))
        page.on("response", lambda r: r.status >= 400 and self.failed.append(f"{r.url} (HTTP {r.status})"))

    def real_errors(self):
        return [e for e in self.errors if not any(a in e for a in CONSOLE_ALLOW)]


def _wait_for_mathjax(page):
    has_math = page.evaluate("document.querySelectorAll('.math').length") > 0
    if has_math:
        page.wait_for_function("window.MathJax && MathJax.startup && MathJax.startup.promise", timeout=20000)
        page.evaluate("MathJax.startup.promise")
    return has_math


RAW_TEX_JS = """() => {
  const untypeset = [...document.querySelectorAll('.math')].filter(e => !e.querySelector('mjx-container'));
  const prose = [...document.querySelectorAll('article p, article li, article td, article dd')]
      .filter(e => !e.closest('pre, code, .highlight, mjx-container, .output'));
  const dollars = prose.filter(e => /\\$\\$|(^|[^\\\\])\\$[^$\\s][^$]*\\$/.test(e.innerText));
  return {untypeset: untypeset.map(e => e.textContent.slice(0, 60)),
          dollars: dollars.map(e => e.innerText.slice(0, 80))};
}"""

# Code blocks (cell input, printed output, library source) wider than their column: they scroll
# sideways. Each is reported by its widest line.
SCROLLING_CODE_JS = """() => [...document.querySelectorAll('article pre')]
  .filter(p => p.scrollWidth > p.clientWidth + 1)
  .map(p => p.innerText.split('\\n').reduce((a, l) => l.length > a.length ? l : a, '').slice(0, 100))"""

BROKEN_IMAGES_JS = """() => [...document.images]
  .filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.getAttribute('src'))"""

ALT_TEXTS_JS = """() => [...document.querySelectorAll('article img')]
  .map(i => ({src: i.getAttribute('src'), alt: i.getAttribute('alt') || ''}))"""

# Every image in a cell's output, with the number of the figure around it ('' if none).
FIGURES_JS = """() => [...document.querySelectorAll('article .cell_output img')].map(i => {
  const f = i.closest('figure');
  const n = f && f.querySelector('figcaption .caption-number');
  return {src: i.getAttribute('src'), number: n ? n.textContent.trim() : ''};
})"""

# Cells whose printed output (stdout) shows as more than one block.
SPLIT_STREAMS_JS = """() => [...document.querySelectorAll('article .cell_output')]
  .filter(o => o.querySelectorAll(':scope > .output.stream:not(.stderr)').length > 1)
  .map(o => o.innerText.slice(0, 80))"""

AXE_RUN_JS = """async () => {
  const r = await axe.run(document, {resultTypes: ['violations']});
  return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                 targets: v.nodes.map(n => n.target.join(' ')).slice(0, 5), count: v.nodes.length}));
}"""


def alt_text_problems(images):
    """Problems of the alt texts of a page's article images, as the browser sees them."""
    problems = []
    for image in images:
        name = image["src"].rsplit("/", 1)[-1][:16]
        if not image["alt"].strip() or re.search(r"\.(png|jpe?g|svg|gif)$", image["alt"], re.I):
            problems.append(f"{name}: no alt text (or only a file name)")
            continue
        problems += [f"{name}: {p}" for p in alt_problems(image["alt"])]
    return problems


def chapter_number(page_path):
    """The chapter number a page's figures carry: chapters/07_x.html -> '7'; None for other pages."""
    m = re.match(r"chapters/(\d\d)_", page_path)
    return str(int(m.group(1))) if m else None


def figure_number_problems(figures, chapter):
    """Figures of a chapter page must read 'Figure N.1', 'Figure N.2', ... in order."""
    numbers = [f["number"] for f in figures]
    unnumbered = [f["src"].rsplit("/", 1)[-1][:16] for f in figures if not f["number"]]
    if unnumbered:
        return [f"images in cell outputs without a figure number: {unnumbered}"]
    expected = [f"Figure {chapter}.{k}" for k in range(1, len(figures) + 1)]
    if chapter is not None and numbers != expected:
        return [f"figures numbered {numbers}, expected {expected}"]
    if chapter is None and not all(re.fullmatch(r"Figure [\w.]+", n) for n in numbers):
        return [f"figure numbers {numbers} do not read 'Figure ...'"]
    return []


def serious_axe_findings(violations, page_path):
    return [v for v in violations if v["impact"] in AXE_FAILING_IMPACTS and (v["id"], page_path) not in AXE_ALLOW]


def switch_to_dark(page):
    """Click the theme's own switch until the page is dark (light -> auto -> dark). Returns the theme.

    The button keeps the focus after a click and the theme shows a tooltip for it
    (outside every landmark); blur it so that axe sees the page a reader reads.
    """
    for _ in range(3):
        if page.evaluate("document.documentElement.dataset.theme") == "dark":
            break
        page.locator(".theme-switch-button:visible").first.click()
    page.evaluate("document.activeElement && document.activeElement.blur()")
    page.mouse.move(0, 0)
    page.wait_for_function("!document.querySelector('.tooltip')", timeout=5000)
    # The theme fades colours in with CSS transitions: audit the colours the reader ends up with.
    page.wait_for_function("document.getAnimations().every(a => !(a instanceof CSSTransition) || a.playState !== 'running')",
                           timeout=10000)
    return page.evaluate("document.documentElement.dataset.theme")


@pytest.mark.parametrize("page_path", _pages())
def test_page(browser, server, page_path, record_property):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    log = PageLog(page)
    page.goto(f"{server}/{page_path}", wait_until="networkidle")
    _wait_for_mathjax(page)
    page.wait_for_load_state("networkidle")
    raw = page.evaluate(RAW_TEX_JS)
    problems = [f"math left untypeset: {raw['untypeset']}"] if raw["untypeset"] else []
    problems += [f"raw $...$ TeX in prose: {raw['dollars']}"] if raw["dollars"] else []
    broken = page.evaluate(BROKEN_IMAGES_JS)
    problems += [f"images that did not load: {broken}"] if broken else []
    scrolling = page.evaluate(SCROLLING_CODE_JS)
    problems += [f"{len(scrolling)} code blocks scroll sideways at 1280 px, widest lines: {scrolling[:5]}"] if scrolling else []
    problems += alt_text_problems(page.evaluate(ALT_TEXTS_JS))
    problems += figure_number_problems(page.evaluate(FIGURES_JS), chapter_number(page_path))
    split = page.evaluate(SPLIT_STREAMS_JS)
    problems += [f"printed output split into several blocks (nb_merge_streams?): {split}"] if split else []
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / _shot_name(page_path)), full_page=True)

    page.add_script_tag(path=str(AXE))
    light = page.evaluate(AXE_RUN_JS)
    problems += [f"console errors: {log.real_errors()}"] if log.real_errors() else []
    n_errors = len(log.real_errors())
    theme = switch_to_dark(page)
    dark = page.evaluate(AXE_RUN_JS) if theme == "dark" else []
    page.screenshot(path=str(SHOTS / _shot_name(page_path, "-dark")))
    page.close()
    problems += [f"the theme switch did not reach the dark theme (data-theme={theme!r})"] if theme != "dark" else []
    after = log.real_errors()[n_errors:]
    problems += [f"console errors after switching to dark: {after}"] if after else []
    for name, found in (("light", light), ("dark", dark)):
        serious = serious_axe_findings(found, page_path)
        problems += [f"axe-core, {name} theme: {json.dumps(v)}" for v in serious]
    minor = sorted({f"{v['id']} ({v['impact']}, {name}): {v['count']}" for name, found in (("light", light), ("dark", dark))
                    for v in found if v["impact"] not in AXE_FAILING_IMPACTS})
    record_property("axe_minor", f"{page_path}: {'; '.join(minor)}" if minor else "")
    assert not log.failed, f"{page_path}: failed requests: {log.failed}"
    assert not problems, f"{page_path}: {len(problems)} problems:\n" + "\n".join(problems)


def test_scroll_check_sees_a_wide_code_line(browser):
    """The check above can fail: a 120-character line in a 600 px column scrolls, an 80-character one does not."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_content("<article style='width: 600px'><pre style='overflow-x: auto; font: 14px monospace'>"
                     + "x" * 120 + "</pre><pre style='overflow-x: auto; font: 10px monospace'>" + "y" * 80 + "</pre></article>")
    found = page.evaluate(SCROLLING_CODE_JS)
    page.close()
    assert found == ["x" * 100]


def test_math_is_rendered_by_local_mathjax(browser, server):
    page = browser.new_page()
    requests = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(f"{server}/intro.html", wait_until="networkidle")
    assert _wait_for_mathjax(page), "the intro page should contain math"
    containers = page.evaluate("document.querySelectorAll('mjx-container').length")
    page.close()
    assert containers > 5
    assert all(u.startswith(server) or u.startswith("data:") for u in requests), [u for u in requests if not u.startswith(server)]


def _split_print():
    """A stored cell that printed in two or more stdout outputs: (page, first line of each)."""
    for path in notebook_paths():
        for cell in load(path)["cells"]:
            streams = [o for o in cell.get("outputs", []) if o.get("output_type") == "stream" and o.get("name") == "stdout"]
            texts = ["".join(o["text"]).strip().splitlines() for o in streams]
            if len(texts) > 1 and all(texts):
                return str(path.relative_to(ROOT).with_suffix(".html")), [t[0].strip() for t in texts]
    return None


def test_printed_table_is_one_block(browser, server):
    """A cell whose stored output is split (a table printed by several print calls) shows as one block."""
    found = _split_print()
    if found is None:
        pytest.skip("no stored cell prints in several outputs: nothing for nb_merge_streams to merge")
    page_path, first_lines = found
    page = browser.new_page()
    page.goto(f"{server}/{page_path}", wait_until="networkidle")
    blocks = page.evaluate("""(lines) => [...document.querySelectorAll('article .cell_output pre')]
        .map(p => p.innerText).filter(t => lines.some(l => t.includes(l)))""", first_lines)
    page.close()
    assert len(blocks) == 1, f"{page_path}: the lines {first_lines} are in {len(blocks)} output blocks, not one"
    assert all(line in blocks[0] for line in first_lines)


def test_search_finds_main_terms(browser, server):
    page = browser.new_page()
    for term, expected_page in [
        ("sigmoid", "01_derivatives"), ("notation", "intro"), ("Mazur", "02_chain_rule"), ("BP3", "03_four_equations"),
        ("Jacobian", "04_matrix_form"), ("momentum", "05_training"), ("softmax", "06_softmax"), ("im2col", "07_convolution"),
        ("truncated", "08_bptt"), ("batch normalization", "09_batchnorm"), ("Hessian", "10_reverse_mode"),
    ]:
        page.goto(f"{server}/search.html?q={term}", wait_until="networkidle")
        page.wait_for_selector("#search-results ul.search li", timeout=20000)
        links = page.evaluate("[...document.querySelectorAll('#search-results ul.search li a')].map(a => a.getAttribute('href'))")
        assert any(expected_page in link for link in links), f"search for {term!r} did not find {expected_page}: {links}"
    page.close()


# --------------------------------------------------------------------------
# The checking functions fail and pass (these run with the browser tests)


def test_rule_figure_numbers():
    fig = [{"src": "a.png", "number": "Figure 7.1"}, {"src": "b.png", "number": "Figure 7.2"}]
    assert figure_number_problems(fig, "7") == []
    assert figure_number_problems(fig[::-1], "7")
    assert figure_number_problems(fig, "3")
    assert figure_number_problems([{"src": "a.png", "number": ""}], "7")
    assert figure_number_problems([{"src": "a.png", "number": "Fig. 1"}], None)
    assert figure_number_problems([], "7") == []
    assert chapter_number("chapters/07_convolution.html") == "7" and chapter_number("intro.html") is None


def test_rule_alt_text_in_the_page():
    assert alt_text_problems([{"src": "_images/x.png", "alt": "A curve that rises."}]) == []
    assert alt_text_problems([{"src": "_images/x.png", "alt": "x.png"}])
    assert alt_text_problems([{"src": "_images/x.png", "alt": "A curve h_{t-1} that ris"}])


def test_rule_axe_allow_list():
    found = [{"id": "color-contrast", "impact": "serious"}, {"id": "region", "impact": "moderate"}]
    assert serious_axe_findings(found, "intro.html") == found[:1]
    AXE_ALLOW[("color-contrast", "intro.html")] = "test entry"
    try:
        assert serious_axe_findings(found, "intro.html") == []
        assert serious_axe_findings(found, "search.html") == found[:1]
    finally:
        del AXE_ALLOW[("color-contrast", "intro.html")]
