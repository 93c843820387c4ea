"""Static checks of every notebook and page of the book: the rules of CONTRIBUTING.md
("Notebooks") that can be read off the stored files without running anything.

- every line of notebook code is at most 88 characters, and so is every line of the
  library source a notebook shows with ``bplib.plot.show_source`` (its stored
  code block) and every line of a stored text output: a longer line scrolls sideways
  in the HTML book;
- every figure (a code cell with an image output) has a name ``fig-chN-slug``, a
  caption and alt text in plain words (at most 400 characters, no TeX, ending
  like a sentence), one figure per cell, and names are unique across the book;
- no visible cell that draws a figure is longer than 12 lines (drawing code is
  hidden with the ``hide-input`` tag);
- no ``literalinclude`` anywhere in the book (library code is shown with
  ``bplib.plot.show_source``);
- every ``Side road:`` heading is followed by the side-road box, and every box
  follows such a heading;
- notebooks are stored executed in order (execution counts 1..n), with no stored
  error, on the ``python3`` kernel.

The introduction states how long the main line takes to read; ``reading_time``
computes it from the notebooks and a test checks the two agree. Run this file
as a script to print the per-chapter table::

    .venv/bin/python tests/test_notebooks.py

The first half of the file holds the checking functions, each a pure function
of a notebook (a dict as stored) or of text; the tests at the end of the file
show on small synthetic notebooks that each rule can fail and pass.
"""

import json
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
CHAPTERS = ROOT / "chapters"

MAX_LINE = 88  # characters in a line of notebook code, of shown library source, of printed output
MAX_VISIBLE_FIGURE_CELL = 12  # lines of a figure cell shown on the page
MAX_ALT = 400  # characters of alt text
HIDING_TAGS = {"hide-input", "remove-input", "hide-cell", "remove-cell"}
FIGURE_NAME = re.compile(r"^fig-[a-z0-9]+(-[a-z0-9]+)+$")
# Alt text is read aloud: no TeX (backslashes, braces, dollars), and it ends like a
# sentence, so that text cut off in the middle of a word shows.
ALT_FORBIDDEN = ("\\", "{", "}", "$")
ALT_END = re.compile(r"[.!?][)\"']?$")

# Reading speed used for the main-line time stated in intro.md: technical prose
# with formulas at 120 words a minute (about half the speed of ordinary prose),
# plus 30 seconds for each code cell shown on the page and for each figure.
WORDS_PER_MINUTE = 120
SECONDS_PER_CODE_CELL = 30
SECONDS_PER_FIGURE = 30


# --------------------------------------------------------------------------
# Finding the book's files


def notebook_paths():
    """Every notebook of the book: chapters/*.ipynb and chapters/practice/*.ipynb."""
    return sorted(p for p in CHAPTERS.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)


def chapter_paths():
    """The numbered chapters (chapters/NN_topic.ipynb), whose main line intro.md times."""
    return sorted(p for p in CHAPTERS.glob("[0-9][0-9]_*.ipynb"))


def page_paths():
    """Every Markdown page of the book: intro.md, chapters/**/*.md, _includes/*.md."""
    pages = [ROOT / "intro.md", *CHAPTERS.rglob("*.md"), *(ROOT / "_includes").glob("*.md")]
    return sorted(p for p in pages if p.is_file() and ".ipynb_checkpoints" not in p.parts)


def load(path):
    return json.loads(pathlib.Path(path).read_text(encoding="utf-8"))


def rel(path):
    return str(pathlib.Path(path).relative_to(ROOT))


# --------------------------------------------------------------------------
# Cells


def source(cell):
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def tags(cell):
    return set(cell.get("metadata", {}).get("tags", []))


def code_cells(nb):
    return [(i, c) for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code"]


def image_outputs(cell):
    return [o for o in cell.get("outputs", []) if any(k.startswith("image/") for k in o.get("data", {}))]


def input_hidden(cell):
    return bool(tags(cell) & HIDING_TAGS)


def figure_prefix(path):
    """The figure-name prefix a notebook's file name asks for: 07_x -> 'fig-ch7-', A1_x -> 'fig-a1-'."""
    name = pathlib.Path(path).name
    if m := re.match(r"(\d\d)_", name):
        return f"fig-ch{int(m.group(1))}-"
    if m := re.match(r"([A-Z])(\d+)_", name):
        return f"fig-{m.group(1).lower()}{m.group(2)}-"
    return None


# --------------------------------------------------------------------------
# The checking functions: each returns a list of problems (empty = the rule holds)


def long_code_lines(nb, limit=MAX_LINE):
    """Code lines longer than ``limit``: (cell index, line number from 1, length)."""
    return [(i, n, len(line)) for i, c in code_cells(nb) for n, line in enumerate(source(c).splitlines(), 1) if len(line) > limit]


def figure_problems(nb, prefix=None):
    """Problems with the figures of a notebook: name, caption, alt text, one per cell."""
    problems = []
    for i, cell in code_cells(nb):
        images = image_outputs(cell)
        if not images:
            continue
        meta = cell.get("metadata", {}).get("mystnb", {})
        figure, image = meta.get("figure", {}), meta.get("image", {})
        name, caption, alt = figure.get("name", ""), figure.get("caption", ""), image.get("alt", "")
        where = f"cell {i}"
        if len(images) > 1:
            problems.append(f"{where}: {len(images)} images in one cell (one figure per cell)")
        if not FIGURE_NAME.match(str(name)):
            problems.append(f"{where}: mystnb.figure.name {name!r} is not of the form fig-chN-slug")
        elif prefix and not name.startswith(prefix):
            problems.append(f"{where}: figure name {name!r} should start with {prefix!r}")
        if not str(caption).strip():
            problems.append(f"{where}: no mystnb.figure.caption")
        problems += [f"{where}: {p}" for p in alt_problems(alt)]
    return problems


def alt_problems(alt):
    """What is wrong with one alt text (empty list: nothing)."""
    alt = str(alt).strip()
    if not alt:
        return ["no mystnb.image.alt"]
    problems = []
    if len(alt) > MAX_ALT:
        problems.append(f"alt text of {len(alt)} characters (at most {MAX_ALT})")
    bad = [ch for ch in ALT_FORBIDDEN if ch in alt]
    if bad:
        problems.append(f"alt text holds TeX characters {bad}: say it in words")
    if not ALT_END.search(alt):
        problems.append(f"alt text does not end like a sentence (cut off?): ...{alt[-30:]!r}")
    return problems


def figure_names(nb):
    return [c.get("metadata", {}).get("mystnb", {}).get("figure", {}).get("name") for _, c in code_cells(nb) if image_outputs(c)]


def long_visible_figure_cells(nb, limit=MAX_VISIBLE_FIGURE_CELL):
    """Figure cells whose code is shown on the page and is longer than ``limit`` lines."""
    shown = [(i, len(source(c).rstrip().splitlines())) for i, c in code_cells(nb) if image_outputs(c) and not input_hidden(c)]
    return [(i, n) for i, n in shown if n > limit]


LITERALINCLUDE = re.compile(r"^[ \t]*(`{3,}|:{3,})[ \t]*\{literalinclude\}|^[ \t]*\.\.[ \t]+literalinclude::", re.MULTILINE)


def literalinclude_uses(text):
    """Line numbers (from 1) where a literalinclude directive opens."""
    return [text.count("\n", 0, m.start()) + 1 for m in LITERALINCLUDE.finditer(text)]


def book_text(path):
    """The text of a notebook's cells (markdown and code), or of a Markdown page."""
    if pathlib.Path(path).suffix == ".ipynb":
        return "\n".join(source(c) for c in load(path)["cells"])
    return pathlib.Path(path).read_text(encoding="utf-8")


# --------------------------------------------------------------------------
# Library source shown with show_source, and stored text output


def output_texts(cell):
    """The stored text outputs of a cell, as a reader sees them: stream text (stdout and
    stderr), the text/plain of a result or display without a Markdown or HTML form, and
    the code block of a Markdown result (the library source that show_source displays;
    the book renders the stored Markdown, and nbval checks it against the library)."""
    texts = []
    for out in cell.get("outputs", []):
        data = out.get("data", {})
        markdown = "".join(data.get("text/markdown", ""))
        if out.get("output_type") == "stream":
            texts.append(out.get("text", ""))
        elif CODE_BLOCK.match(markdown):
            texts.append(CODE_BLOCK.match(markdown).group(1))
        elif "text/plain" in data and not {"text/markdown", "text/html"} & set(data):
            texts.append(data["text/plain"])
    return ["".join(t) if isinstance(t, list) else t for t in texts]


CODE_BLOCK = re.compile(r"^```\w*\n(.*)\n```\s*$", re.DOTALL)  # a Markdown output that is one fenced block


def long_output_lines(nb, limit=MAX_LINE):
    """Stored text output lines longer than ``limit``: (cell index, line number from 1 in the
    cell's text outputs, length)."""
    found = []
    for i, cell in code_cells(nb):
        lines = [line for text in output_texts(cell) for line in text.splitlines()]
        found += [(i, n, len(line)) for n, line in enumerate(lines, 1) if len(line) > limit]
    return found


# --------------------------------------------------------------------------
# Markdown structure: headings, side roads, solutions

HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
FENCE = re.compile(r"^\s*(`{3,}|:{3,})(.*)$")
SIDE_ROAD_HEADING = re.compile(r"^side road:", re.IGNORECASE)
SIDE_ROAD_OPEN = re.compile(r"^\s*(`{3,}|:{3,})\s*\{admonition\}\s*Side road\s*$")


def markdown_lines(text):
    """Each line of a Markdown text with the depth of fenced blocks around it.

    Returns (line, before, after): the number of open fences (code blocks or
    directives) before and after the line. A line outside every block has
    before == after == 0; an opening fence at the top level has before == 0,
    after == 1. A fence with an info string opens a nested block (MyST
    directives nest); a bare fence of the same character, at least as long,
    closes the innermost one.
    """
    out, stack = [], []
    for line in text.splitlines():
        before = len(stack)
        m = FENCE.match(line)
        if m and stack and m.group(1)[0] == stack[-1][0] and len(m.group(1)) >= len(stack[-1]) and not m.group(2).strip():
            stack.pop()
        elif m and (m.group(2).strip() or not stack):
            stack.append(m.group(1))
        out.append((line, before, len(stack)))
    return out


def headings(text):
    """Headings outside fenced blocks: (line index, level, title)."""
    found = []
    for k, (line, before, _after) in enumerate(markdown_lines(text)):
        if before == 0 and (m := HEADING.match(line)):
            found.append((k, len(m.group(1)), m.group(2)))
    return found


def side_road_box(lines):
    """Whether ``lines`` (after blank ones) open with the side-road admonition.

    Returns a problem string, or None when the box is right: a fenced
    ``{admonition} Side road`` with ``:class: side-road`` whose body names, with
    ``{ref}``, the place where the main line resumes.
    """
    lines = list(lines)
    while lines and not lines[0].strip():
        lines.pop(0)
    if not lines or not (m := SIDE_ROAD_OPEN.match(lines[0])):
        first = lines[0].strip() if lines else "nothing"
        return f"is not followed by the side-road admonition (found {first[:60]!r})"
    fence, body = m.group(1), []
    for line in lines[1:]:
        if line.strip().startswith(fence[0] * len(fence)) and not line.strip().strip(fence[0]):
            break
        body.append(line)
    else:
        return "has a side-road admonition that is never closed"
    options = [ln.strip() for ln in body if ln.strip().startswith(":")]
    classes = [c for o in options if o.startswith(":class:") for c in o.split()[1:]]
    if "side-road" not in classes:
        return "has an admonition without ':class: side-road'"
    if "{ref}`" not in "\n".join(body):
        return "has a side-road box that does not say, with {ref}, where the main line resumes"
    return None


def side_road_problems(cells):
    """Problems with the side roads of a page given as its Markdown cells in order.

    ``cells`` is a list of (cell index, markdown text); a Markdown page is one
    cell. A ``Side road:`` heading must be followed, in its own cell or as the
    first thing of the next cell, by the side-road box; every side-road box must
    follow such a heading.
    """
    problems = []
    boxes_after_heading = set()
    for n, (idx, text) in enumerate(cells):
        lines = text.splitlines()
        for k, _level, title in headings(text):
            if not SIDE_ROAD_HEADING.match(title):
                continue
            rest = lines[k + 1:]
            if not any(ln.strip() for ln in rest):
                nxt = cells[n + 1] if n + 1 < len(cells) else None
                if nxt is None or nxt[0] != idx + 1:
                    problems.append(f"cell {idx}: heading {title!r} is followed by no Markdown cell")
                    continue
                where, rest, box_at = nxt[0], nxt[1].splitlines(), (nxt[0], 0)
            else:
                where, box_at = idx, (idx, k + 1)
            if (p := side_road_box(rest)) is None:
                start = next(j for j, ln in enumerate(rest) if ln.strip())
                boxes_after_heading.add((where, box_at[1] + start))
            else:
                problems.append(f"cell {idx}: heading {title!r} {p}")
    for idx, text in cells:
        for k, (line, before, _after) in enumerate(markdown_lines(text)):
            if before == 0 and SIDE_ROAD_OPEN.match(line) and (idx, k) not in boxes_after_heading:
                problems.append(f"cell {idx}: a side-road box that does not open a 'Side road:' section")
    return problems


def markdown_cells(nb):
    return [(i, source(c)) for i, c in enumerate(nb["cells"]) if c["cell_type"] == "markdown"]


# --------------------------------------------------------------------------
# Stored execution


def execution_problems(nb):
    """Stored-execution problems: kernel, counts 1..n in order, stored errors."""
    problems = []
    kernel = nb.get("metadata", {}).get("kernelspec", {}).get("name")
    if kernel != "python3":
        problems.append(f"kernelspec {kernel!r}, not 'python3'")
    expected = 1
    for i, cell in code_cells(nb):
        count = cell.get("execution_count")
        skipped = "skip-execution" in tags(cell) or not source(cell).strip()
        if skipped:
            if count is not None:
                problems.append(f"cell {i}: a skipped or empty cell with execution count {count}")
            continue
        if count != expected:
            problems.append(f"cell {i}: execution count {count}, expected {expected} (run top to bottom in a fresh kernel)")
            return problems + errors_in(nb)
        expected += 1
    return problems + errors_in(nb)


def errors_in(nb):
    return [f"cell {i}: stored error {o.get('ename')}: {o.get('evalue', '')[:80]}" for i, c in code_cells(nb)
            for o in c.get("outputs", []) if o.get("output_type") == "error"]


# --------------------------------------------------------------------------
# Reading time of the main line

DIRECTIVE_OPEN = re.compile(r"^\s*(`{3,}|:{3,})\s*\{([\w:-]+)\}")
NOT_PROSE = re.compile(r"^\s*(:[\w-]+:.*|\([\w-]+\)=|<!--.*-->)\s*$")


def reading_parts(nb):
    """Words, visible code cells and figures of a notebook, on and off the main line.

    Off the main line: side-road sections (from a ``Side road:`` heading to the
    next heading of the same or a higher level) and solutions (``{solution}``
    blocks, and everything between ``{solution-start}`` and ``{solution-end}``,
    code cells included), which a reader opens after trying the exercise.
    Fence lines, directive options and labels are not counted as words.
    Returns {"main": {...}, "all": {...}}, each with words, code and figures.
    """
    parts = {k: {"words": 0, "code": 0, "figures": 0} for k in ("main", "all")}
    state = {"side": None, "gated": False}

    def add(key, n, main):
        parts["all"][key] += n
        parts["main"][key] += n if main else 0

    for cell in nb["cells"]:
        text = source(cell)
        if cell["cell_type"] == "code":
            main = state["side"] is None and not state["gated"]
            add("code", int(bool(text.strip()) and not input_hidden(cell)), main)
            add("figures", len(image_outputs(cell)), main)
        elif cell["cell_type"] == "markdown":
            for words, in_solution in _prose_lines(text, state):
                add("words", words, state["side"] is None and not state["gated"] and not in_solution)
    return parts


def _prose_lines(text, state):
    """The lines of one Markdown cell as (words, inside a {solution}), updating ``state``.

    ``state`` carries across cells: "side" is the level of the open side-road
    heading (or None), "gated" whether a {solution-start} is open.
    """
    solution_depth = None
    for line, before, after in markdown_lines(text):
        words = len(line.split())
        if before == 0 and (m := HEADING.match(line)):
            level, words = len(m.group(1)), len(m.group(2).split())
            if state["side"] is not None and level <= state["side"]:
                state["side"] = None
            if SIDE_ROAD_HEADING.match(m.group(2)):
                state["side"] = level
        if (d := DIRECTIVE_OPEN.match(line)) and solution_depth is None:
            if d.group(2) == "solution":
                solution_depth = before
            state["gated"] = {"solution-start": True, "solution-end": False}.get(d.group(2), state["gated"])
        in_solution = solution_depth is not None
        if in_solution and after == solution_depth and after < before:
            solution_depth = None
        if FENCE.match(line) or NOT_PROSE.match(line):
            words = 0
        yield words, in_solution


def minutes(part):
    return part["words"] / WORDS_PER_MINUTE + (part["code"] * SECONDS_PER_CODE_CELL + part["figures"] * SECONDS_PER_FIGURE) / 60


def reading_time(paths=None):
    """Minutes to read the chapters: {"chapters": {name: (main, all)}, "main": total, "all": total}."""
    paths = chapter_paths() if paths is None else paths
    table = {}
    for path in paths:
        parts = reading_parts(load(path))
        table[pathlib.Path(path).stem] = (minutes(parts["main"]), minutes(parts["all"]))
    return {"chapters": table, "main": sum(m for m, _ in table.values()), "all": sum(a for _, a in table.values())}


# The sentence of intro.md that states the two times, in hours.
INTRO_TIMES = re.compile(
    r"main\s+line[^.]*?about\s+\**(?P<main>\d+(?:\.\d+)?)\s+hours\**[^.]*?every\s+side\s+road[^.]*?"
    r"about\s+\**(?P<all>\d+(?:\.\d+)?)\s+hours",
    re.DOTALL,
)
TIME_TOLERANCE = 0.15  # the intro rounds to half hours; chapters move a little between re-measurements


# --------------------------------------------------------------------------
# The rules, over every notebook and page of the book

NOTEBOOKS = notebook_paths()
IDS = [rel(p) for p in NOTEBOOKS]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_code_lines_fit_the_page(path):
    long = long_code_lines(load(path))
    shown = ", ".join(f"cell {i} line {n} ({length})" for i, n, length in long[:12])
    assert not long, f"{rel(path)}: {len(long)} code lines longer than {MAX_LINE} characters: {shown}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_printed_output_fits_the_page(path):
    long = long_output_lines(load(path))
    shown = ", ".join(f"cell {i} output line {n} ({length})" for i, n, length in long[:12])
    assert not long, f"{rel(path)}: {len(long)} stored output lines longer than {MAX_LINE} characters: {shown}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_figures_have_name_caption_and_alt_text(path):
    problems = figure_problems(load(path), figure_prefix(path))
    assert not problems, f"{rel(path)}: {len(problems)} figure problems:\n" + "\n".join(problems)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_drawing_code_is_hidden(path):
    long = long_visible_figure_cells(load(path))
    assert not long, (f"{rel(path)}: visible figure cells longer than {MAX_VISIBLE_FIGURE_CELL} lines "
                      f"(tag them hide-input): {', '.join(f'cell {i} ({n} lines)' for i, n in long)}")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_stored_executed_in_order(path):
    problems = execution_problems(load(path))
    assert not problems, f"{rel(path)}:\n" + "\n".join(problems)


def test_figure_names_are_unique_across_the_book():
    seen = {}
    for path in NOTEBOOKS:
        for name in figure_names(load(path)):
            if name:
                seen.setdefault(name, []).append(rel(path))
    dup = {n: ps for n, ps in seen.items() if len(ps) > 1}
    assert not dup, f"figure names used more than once: {dup}"


@pytest.mark.parametrize("path", NOTEBOOKS + page_paths(), ids=[rel(p) for p in NOTEBOOKS + page_paths()])
def test_no_literalinclude(path):
    lines = literalinclude_uses(book_text(path))
    assert not lines, f"{rel(path)}: literalinclude at lines {lines} of its text; use bplib.plot.show_source in a code cell"


@pytest.mark.parametrize("path", NOTEBOOKS + page_paths(), ids=[rel(p) for p in NOTEBOOKS + page_paths()])
def test_side_roads_are_marked(path):
    cells = markdown_cells(load(path)) if path.suffix == ".ipynb" else [(0, path.read_text(encoding="utf-8"))]
    problems = side_road_problems(cells)
    if path == ROOT / "intro.md":  # the introduction shows the box once, as an example, outside any side road
        orphan = "does not open a 'Side road:' section"
        problems = [p for p in problems if not p.endswith(orphan)] + [p for p in problems if p.endswith(orphan)][1:]
    assert not problems, f"{rel(path)}:\n" + "\n".join(problems)


def test_intro_states_the_reading_time(record_property):
    times = reading_time()
    record_property("reading_time", format_reading_time(times))
    m = INTRO_TIMES.search((ROOT / "intro.md").read_text(encoding="utf-8"))
    assert m, "intro.md should say 'the main line ... about N hours ... every side road ... about M hours'"
    for key in ("main", "all"):
        stated, computed = float(m.group(key)) * 60, times[key]
        assert abs(stated - computed) <= TIME_TOLERANCE * computed, (
            f"intro.md states {stated / 60:g} hours for {key!r}; the notebooks measure {computed / 60:.2f} hours "
            f"(update intro.md):\n{format_reading_time(times)}")


def format_reading_time(times):
    rows = [f"{'chapter':24s} {'main line':>10s} {'with side roads':>16s}"]
    rows += [f"{name:24s} {m:8.0f} min {a:12.0f} min" for name, (m, a) in times["chapters"].items()]
    rows.append(f"{'total':24s} {times['main'] / 60:8.2f} h {times['all'] / 60:14.2f} h")
    return "\n".join(rows)


# --------------------------------------------------------------------------
# Each rule fails and passes on small synthetic notebooks


def nb_of(*cells, kernel="python3"):
    return {"cells": list(cells), "metadata": {"kernelspec": {"name": kernel}}, "nbformat": 4, "nbformat_minor": 5}


def md(text):
    return {"cell_type": "markdown", "metadata": {}, "source": text}


def code(text, count=None, tags=(), outputs=(), mystnb=None):
    meta = {"tags": list(tags)}
    if mystnb is not None:
        meta["mystnb"] = mystnb
    return {"cell_type": "code", "metadata": meta, "source": text, "execution_count": count, "outputs": list(outputs)}


PNG = {"output_type": "display_data", "data": {"image/png": "iVBORw0KGgo=", "text/plain": "<Figure>"}, "metadata": {}}
TEXT = {"output_type": "stream", "name": "stdout", "text": "ok\n"}
GOOD_FIGURE = {"figure": {"name": "fig-ch7-windows", "caption": "Each window of $x$ meets one $y$."},
               "image": {"alt": "A grid of six by six cells; one window of three by three is orange."}}


def test_rule_long_lines():
    assert long_code_lines(nb_of(code("x = 1\n" + "y = " + "1" * 84, 1))) == []  # 88 characters exactly
    assert long_code_lines(nb_of(md("z" * 200), code("x = 1\n" + "y = " + "1" * 85, 1))) == [(1, 2, 89)]


def test_rule_output_lines():
    def stream(text, name="stdout"):
        return {"output_type": "stream", "name": name, "text": text}

    def result(**data):
        return {"output_type": "execute_result", "data": data, "metadata": {}, "execution_count": 1}

    fits, wide = "a" * 88, "b" * 89
    assert long_output_lines(nb_of(code("print()", 1, outputs=[stream(f"x\n{fits}\n")]))) == []
    assert long_output_lines(nb_of(md(wide), code("print()", 1, outputs=[stream(["x\n", f"{wide}\n"])]))) == [(1, 2, 89)]
    assert long_output_lines(nb_of(code("", 1, outputs=[stream("x\n"), stream(wide, "stderr")]))) == [(0, 2, 89)]
    assert long_output_lines(nb_of(code("v", 1, outputs=[result(**{"text/plain": wide})]))) == [(0, 1, 89)]
    # library source from show_source: the Markdown code block is what the book shows, fences excluded
    source = {"text/markdown": f"```python\ndef f():\n    {fits[4:]}\n```", "text/html": "<pre>f</pre>",
              "text/plain": "f"}
    assert long_output_lines(nb_of(code("show_source(f)", 1, outputs=[result(**source)]))) == []
    source["text/markdown"] = f"```python\ndef f():\n    {wide}\n```"
    assert long_output_lines(nb_of(code("show_source(f)", 1, outputs=[result(**source)]))) == [(0, 2, 93)]
    # any other result shown as HTML or Markdown, or a glued value, is not shown as text
    for data in ({"text/plain": wide, "text/html": "<p>b</p>"}, {"text/plain": wide, "text/markdown": "b"},
                 {"application/papermill.record/text/plain": wide}):
        assert long_output_lines(nb_of(code("v", 1, outputs=[result(**data)]))) == []


def test_rule_figure_metadata():
    good = code("plt.show()", 1, ["hide-input"], [PNG], GOOD_FIGURE)
    assert figure_problems(nb_of(good), "fig-ch7-") == []
    assert figure_problems(nb_of(code("print(1)", 1, outputs=[TEXT])), "fig-ch7-") == []  # no image: no rule
    missing = figure_problems(nb_of(code("plt.show()", 1, outputs=[PNG])))
    for what in ("figure.name", "caption", "no mystnb.image.alt"):
        assert any(what in p for p in missing), what
    assert any("should start with 'fig-ch3-'" in p for p in figure_problems(nb_of(good), "fig-ch3-"))
    bad_name = {**GOOD_FIGURE, "figure": {"name": "Fig 7 windows", "caption": "c"}}
    assert any("not of the form" in p for p in figure_problems(nb_of(code("", 1, outputs=[PNG], mystnb=bad_name))))
    two = figure_problems(nb_of(code("", 1, outputs=[PNG, PNG], mystnb=GOOD_FIGURE)))
    assert two == ["cell 0: 2 images in one cell (one figure per cell)"]


def test_rule_alt_text():
    assert alt_problems("A bell-shaped curve that peaks at one quarter.") == []
    assert alt_problems("Curves (dashed).") == []
    assert "alt text of 401 characters (at most 400)" in alt_problems("a" * 400 + ".")
    assert alt_problems("a" * 399 + ".") == []
    for tex in ("h_{t-1} feeds h_t.", "The error 2/\\lambda is small.", "Slope $2$ here."):
        assert any("TeX" in p for p in alt_problems(tex)), tex
    assert any("cut off" in p for p in alt_problems("The curve rises, then it fla"))
    assert alt_problems("") == ["no mystnb.image.alt"]


def test_rule_visible_figure_cells():
    long_src = "\n".join(f"ax.plot({k})" for k in range(13))
    assert long_visible_figure_cells(nb_of(code(long_src, 1, outputs=[PNG]))) == [(0, 13)]
    assert long_visible_figure_cells(nb_of(code(long_src, 1, ["hide-input"], [PNG]))) == []
    assert long_visible_figure_cells(nb_of(code(long_src, 1, ["remove-cell"], [PNG]))) == []
    assert long_visible_figure_cells(nb_of(code(long_src, 1, outputs=[TEXT]))) == []  # prints, draws nothing
    assert long_visible_figure_cells(nb_of(code(long_src.rsplit("\n", 1)[0] + "\n\n", 1, outputs=[PNG]))) == []


def test_rule_literalinclude():
    assert literalinclude_uses("Text\n\n```{literalinclude} ../bplib/conv.py\n:pyobject: f\n```\n") == [3]
    assert literalinclude_uses(":::{literalinclude} a.py\n:::\n") == [1]
    assert literalinclude_uses("Intro\n.. literalinclude:: a.py\n") == [2]
    assert literalinclude_uses("We show code with show_source, never with a literalinclude directive.\n") == []


SIDE_ROAD = ("## Side road: Kronecker products\n\n```{admonition} Side road\n:class: side-road\n"
             "A first reading can skip this section; the main line resumes at {ref}`ch4-nn`.\n```\n")


def test_rule_side_roads():
    assert side_road_problems([(0, SIDE_ROAD + "\nText.\n")]) == []
    heading, box = SIDE_ROAD.split("\n\n", 1)
    assert side_road_problems([(3, heading + "\n"), (4, box)]) == []  # the box opens the next cell
    assert side_road_problems([(3, heading + "\n"), (5, box)])  # not the next cell: a code cell between
    assert side_road_problems([(0, heading + "\n\nSome text first.\n\n" + box)])
    no_class = SIDE_ROAD.replace(":class: side-road\n", "")
    assert any("side-road" in p for p in side_road_problems([(0, no_class)]))
    no_ref = SIDE_ROAD.replace("{ref}`ch4-nn`", "the next section")
    assert any("where the main line resumes" in p for p in side_road_problems([(0, no_ref)]))
    assert any("does not open" in p for p in side_road_problems([(0, "## Kronecker\n\n" + box)]))
    fenced = "````markdown\n" + SIDE_ROAD.replace("{ref}`ch4-nn`", "x") + "````\n"
    assert side_road_problems([(0, fenced)]) == []  # an example inside a code block is not a side road


def test_rule_stored_execution():
    good = nb_of(code("a = 1", 1), md("x"), code("", None), code("b", 2, ["skip-execution"]), code("c", 2))
    assert execution_problems(good) == ["cell 3: a skipped or empty cell with execution count 2"]
    assert execution_problems(nb_of(code("a", 1), code("b", 2))) == []
    assert execution_problems(nb_of(code("a", 2), code("b", 3)))  # not a fresh kernel
    assert execution_problems(nb_of(code("a", 1), code("b", None)))  # not run to the end
    assert execution_problems(nb_of(code("a", 2), code("b", 1)))  # out of order
    assert execution_problems(nb_of(code("a", 1), kernel="conda-env")) == ["kernelspec 'conda-env', not 'python3'"]
    error = {"output_type": "error", "ename": "ValueError", "evalue": "boom", "traceback": []}
    assert execution_problems(nb_of(code("a", 1, outputs=[error]))) == ["cell 0: stored error ValueError: boom"]


def test_rule_reading_parts():
    words = " ".join(["word"] * 120)
    nb = nb_of(
        md("# Chapter\n\n(ch-label)=\n" + words),
        code("x = 1", 1),
        code("plot()", 2, ["hide-input"], [PNG]),
        md(SIDE_ROAD + words),
        code("y = 2", 3),
        md("### Still on the side road\n" + words),
        md("## Back on the main line\n" + words),
        md("```{exercise} Try\n:label: ex\nOne two three.\n```\n\n```{solution} ex\n:class: dropdown\n" + words + "\n```\n"),
        md("```{solution-start} ex\n:class: dropdown\n```\n" + words),
        code("z = 3", 4),
        md("```{solution-end}\n```\nLast four words here."),
    )
    parts = reading_parts(nb)
    # Main line: "Chapter" and 120 words; "Back on the main line" and 120; the exercise's
    # "One two three."; the 4 words after the gated solution. Fences, options, labels: 0.
    assert parts["main"] == {"words": 121 + 125 + 3 + 4, "code": 1, "figures": 1}
    # The side road: its heading (4), the box's sentence (13), 120, "Still on the side road" (5), 120.
    side = 4 + 13 + 120 + 5 + 120
    assert parts["all"] == {"words": 253 + side + 120 + 120, "code": 3, "figures": 1}
    assert minutes(parts["main"]) == pytest.approx(253 / 120 + 1.0)


def test_rule_intro_sentence():
    m = INTRO_TIMES.search("Along the main line the chapters take about **6.5 hours**; with every side road, about\n**11 hours**.")
    assert m and (m.group("main"), m.group("all")) == ("6.5", "11")


def test_figure_prefix():
    assert figure_prefix("chapters/07_convolution.ipynb") == "fig-ch7-"
    assert figure_prefix("chapters/practice/10_reverse_mode.ipynb") == "fig-ch10-"
    assert figure_prefix("chapters/A1_matrix_calculus.ipynb") == "fig-a1-"
    assert figure_prefix("chapters/bibliography.md") is None


if __name__ == "__main__":
    print(format_reading_time(reading_time()))
