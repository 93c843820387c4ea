"""JupyterLab, the second way readers use the course: one chapter as a reader sees it there.

Run by `make test` with the browser checks (marker `browser`). The test starts
JupyterLab headless on 127.0.0.1 (a free port, no token, settings and workspaces
in a temporary folder), opens a chapter notebook in headless Chromium and checks,
with jupyterlab-myst installed (requirements.txt):

- a ``{prf:proposition}`` renders as a box with its title, not as fenced text;
- a ``{solution}`` with ``:class: dropdown`` renders folded (a closed <details>);
- library code shown with ``bplib.plot.show_source`` renders as code in colour
  (syntax highlighted), not as plain text.

It saves screenshots under ``_build/screenshots/`` (``lab-*.png``). The chapter is
the first of LAB_CANDIDATES that holds all three (CONTRIBUTING.md, "Notebooks").
"""

import json
import os
import pathlib
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

pytestmark = pytest.mark.browser

ROOT = pathlib.Path(__file__).resolve().parent.parent
SHOTS = ROOT / "_build" / "screenshots"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
LAB_CANDIDATES = ["chapters/09_batchnorm.ipynb", "chapters/01_derivatives.ipynb",
                  *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "chapters").glob("[0-9][0-9]_*.ipynb"))]

PROPOSITION = re.compile(r"^\s*(`{3,}|:{3,})\s*\{prf:proposition\}", re.MULTILINE)
FOLDED_SOLUTION = re.compile(r"^\s*(`{3,}|:{3,})\s*\{solution\}[^\n]*\n(:[\w-]+:[^\n]*\n)*:class:[^\n]*\bdropdown\b", re.MULTILINE)
SHOW_SOURCE = re.compile(r"\bshow_source\(")


def _source(cell):
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def lab_requirements(nb):
    """Which of the three things the lab test looks at a notebook holds."""
    md = [_source(c) for c in nb["cells"] if c["cell_type"] == "markdown"]
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    return {
        "a {prf:proposition}": any(PROPOSITION.search(s) for s in md),
        "a {solution} with :class: dropdown": any(FOLDED_SOLUTION.search(s) for s in md),
        "a show_source(...) cell with its output stored": any(SHOW_SOURCE.search(_source(c)) and c.get("outputs") for c in code),
    }


def lab_notebook():
    """The first candidate chapter that holds all three, or (None, what each candidate lacks)."""
    missing = {}
    for path in dict.fromkeys(LAB_CANDIDATES):
        if not (ROOT / path).is_file():
            continue
        has = lab_requirements(json.loads((ROOT / path).read_text(encoding="utf-8")))
        if all(has.values()):
            return path, {}
        missing[path] = [k for k, v in has.items() if not v]
    return None, missing


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server on localhost for the repository, stopped at the end."""
    tmp = tmp_path_factory.mktemp("lab")
    settings = tmp / "settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    # No news and no update check: the test machine has no network, and a reader's popup would cover the page.
    (settings / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    # Never write to the repository's notebooks: opening one may mark it changed (trust, MyST metadata).
    docmanager = tmp / "settings" / "@jupyterlab" / "docmanager-extension"
    docmanager.mkdir(parents=True)
    (docmanager / "plugin.jupyterlab-settings").write_text(json.dumps({"autosave": False}))
    # Every cell laid out, not only those in view: a windowed notebook may measure a cell at zero height.
    tracker = tmp / "settings" / "@jupyterlab" / "notebook-extension"
    tracker.mkdir(parents=True)
    (tracker / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
    port = _free_port()
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(tmp / "config"), JUPYTER_RUNTIME_DIR=str(tmp / "runtime"))
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
           "--ServerApp.port_retries=0", "--IdentityProvider.token=", "--ServerApp.password=", "--allow-root",
           f"--ServerApp.root_dir={ROOT}", f"--LabApp.user_settings_dir={tmp / 'settings'}",
           f"--LabApp.workspaces_dir={tmp / 'workspaces'}", "--LabApp.expose_app_in_browser=True"]
    log = (tmp / "lab.log").open("w")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                pytest.fail(f"JupyterLab exited with {proc.returncode}:\n{(tmp / 'lab.log').read_text()[-2000:]}")
            try:
                urllib.request.urlopen(f"{url}/api/status", timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not answer within 120 s:\n{(tmp / 'lab.log').read_text()[-2000:]}")
                time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


# Finds the three cells by their source in the notebook model, scrolls each into view
# (JupyterLab renders a Markdown cell when it becomes visible) and reports what a reader sees.
INSPECT_JS = """async () => {
  const nb = window.jupyterapp.shell.currentWidget.content;
  const cells = nb.widgets;
  const sleep = ms => new Promise(r => setTimeout(r, ms));
  const find = re => cells.findIndex(c => new RegExp(re, 'm').test(c.model.sharedModel.getSource()));
  const show = async (i, sel) => {
    await nb.scrollToItem(i, 'center');
    for (let k = 0; k < 60 && !cells[i].node.querySelector(sel); k++) await sleep(500);
    return cells[i].node;
  };
  const out = {};
  let i = find(%(prop)s);
  let node = await show(i, '.myst');
  const rendered = node.querySelector('.myst');
  const text = e => (e ? e.textContent : '').trim();
  const box = [...node.querySelectorAll('.myst aside, .myst div')].find(e => /^Proposition/.test(text(e))
      && (e.tagName === 'ASIDE' || /proof|admonition/.test(e.className)));
  const style = box ? getComputedStyle(box) : null;
  // Layout may lag the render on a slow machine: wait until the box has its height (at most 15 s).
  for (let k = 0; k < 30 && box && box.getBoundingClientRect().height === 0; k++) {
    box.scrollIntoView({block: 'center'});
    await sleep(500);
  }
  out.prop = {index: i, rawFence: text(rendered).includes('{prf:proposition}'), boxed: !!box,
              title: text(box).slice(0, 60),
              framed: !!style && (style.boxShadow !== 'none' || parseFloat(style.borderLeftWidth) > 0
                                  || style.backgroundColor !== 'rgba(0, 0, 0, 0)'),
              height: box ? box.getBoundingClientRect().height : 0};
  i = find(%(sol)s);
  node = await show(i, '.myst details');
  const sols = [...node.querySelectorAll('.myst details')].filter(d => /^Solution/.test(text(d.querySelector('summary'))));
  out.sol = {index: i, rawFence: [...node.querySelectorAll('.myst')].some(m => text(m).includes('{solution}')), count: sols.length,
             open: sols.filter(d => d.open).length, summary: sols.length ? text(sols[0].querySelector('summary')) : ''};
  i = find(%(src)s);
  node = await show(i, '.jp-OutputArea-output');
  const output = [...node.querySelectorAll('.jp-OutputArea-output')].find(o => /\\b(def|class) \\w+/.test(text(o)));
  const spans = output ? [...output.querySelectorAll('pre span, code span')] : [];
  out.src = {index: i, code: !!output && !!output.querySelector('pre'), mime: output ? output.dataset.mimeType : '',
             colours: [...new Set(spans.map(s => getComputedStyle(s).color))].length,
             text: text(output).slice(0, 60)};
  return out;
}"""


def test_lab_notebook_is_chosen():
    path, missing = lab_notebook()
    assert path, f"no chapter holds what the JupyterLab test looks at; each lacks: {missing}"


def test_chapter_in_jupyterlab(lab):
    from playwright.sync_api import sync_playwright

    path, missing = lab_notebook()
    assert path, f"no chapter holds what the JupyterLab test looks at; each lacks: {missing}"
    patterns = (PROPOSITION, FOLDED_SOLUTION, SHOW_SOURCE)
    js = INSPECT_JS % {key: json.dumps(rx.pattern) for key, rx in zip(("prop", "sol", "src"), patterns)}
    SHOTS.mkdir(parents=True, exist_ok=True)
    stem = pathlib.Path(path).stem
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{lab}/lab/tree/{path}")
        page.wait_for_function("window.jupyterapp && jupyterapp.shell.currentWidget && jupyterapp.shell.currentWidget.content"
                               " && jupyterapp.shell.currentWidget.content.widgets.length > 0", timeout=120000)
        page.wait_for_selector(".jp-Notebook .jp-MarkdownCell .myst", timeout=60000)
        seen = page.evaluate(js)
        for key in ("prop", "sol", "src"):
            page.evaluate("i => jupyterapp.shell.currentWidget.content.scrollToItem(i, 'start')", seen[key]["index"])
            page.wait_for_timeout(1000)
            page.screenshot(path=str(SHOTS / f"lab-{stem}-{key}.png"))
        browser.close()

    prop, sol, src = seen["prop"], seen["sol"], seen["src"]
    assert prop["boxed"] and not prop["rawFence"], f"{path}: the proposition is not rendered as a box: {prop}"
    assert prop["framed"] and prop["height"] > 30 and prop["title"].startswith("Proposition"), f"{path}: {prop}"
    assert sol["count"] >= 1 and not sol["rawFence"], f"{path}: no folded solution rendered: {sol}"
    assert sol["open"] == 0, f"{path}: a solution is shown unfolded: {sol}"
    assert src["code"], f"{path}: show_source's output does not render as a code block: {src}"
    assert src["colours"] >= 3, (
        f"{path}: show_source's output renders as code without colour ({src['colours']} colours, {src['mime']}). "
        "jupyterlab-myst tokenises Markdown code blocks but ships no colours for them; an HTML copy of the "
        "highlighted source in the display bundle (pygments with inline styles) is what JupyterLab shows in colour")


# --------------------------------------------------------------------------
# The choice of chapter, on synthetic notebooks


def test_rule_lab_requirements():
    def nb(*cells):
        return {"cells": list(cells)}

    prop = {"cell_type": "markdown", "source": "```{prf:proposition} A\n:label: p\nText.\n```\n"}
    sol = {"cell_type": "markdown", "source": "```{solution} ex-1\n:label: s\n:class: dropdown\nYes.\n```\n"}
    src = {"cell_type": "code", "source": "show_source(norm.batchnorm_forward)", "outputs": [{"output_type": "display_data"}]}
    assert all(lab_requirements(nb(prop, sol, src)).values())
    assert not lab_requirements(nb(prop, sol, {**src, "outputs": []}))["a show_source(...) cell with its output stored"]
    open_sol = {"cell_type": "markdown", "source": "```{solution} ex-1\nYes.\n```\n"}
    assert not lab_requirements(nb(prop, open_sol, src))["a {solution} with :class: dropdown"]
    assert not lab_requirements(nb(sol, src))["a {prf:proposition}"]
