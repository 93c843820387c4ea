"""Checks of the printable PDF, ``_build/latex/book.pdf``, read as a reader and as TeX saw it.

`make pdf` builds the PDF (XeLaTeX through Sphinx's LaTeX writer) and then runs this
file; `make test` does both after the HTML book's checks. The unit-test run
(``pytest tests``) comes before any PDF exists, so this module is skipped there
unless ``BP_PDF_TESTS=1`` (set by `make pdf`).

What is checked, against the notebooks and ``_toc.yml`` rather than fixed numbers:

- the LaTeX log: no error, no undefined reference, no character missing from a font,
  no code line overfull (past the right margin), nothing pushed past the bottom margin;
- every page of the table of contents is in the PDF under its title, numbered as in
  the HTML book (the chapters of a numbered part 1, 2, ...; the other pages without
  a number), and each chapter's pages contain a main term of that chapter;
- no "??" (an unresolved reference) and every "(page N)" names a page of the book;
- at least as many embedded images as the notebooks have image outputs;
- every solution of an exercise is printed, and no proposition or exercise lost its
  number;
- code: every line set in the code font ends inside the text block, and a code block
  holds the notebooks' 88 characters a line without wrapping; no text of any kind
  comes within 1 cm of the paper's edge;
- the bibliography lists every entry of references.bib;
- the HTML book, if built, links the PDF only where the file is beside it.
"""

import json
import os
import re
import statistics
import subprocess
import xml.etree.ElementTree as ET
from functools import cache
from pathlib import Path

import pytest
import yaml

if os.environ.get("BP_PDF_TESTS") != "1":
    pytest.skip("the PDF checks run in `make pdf`, after the PDF is built (BP_PDF_TESTS=1)", allow_module_level=True)

ROOT = Path(__file__).resolve().parent.parent
LATEX = ROOT / "_build" / "latex"
PDF = LATEX / "book.pdf"
CODE_WIDTH = 88  # characters a line of notebook code may have (tests of the notebooks)

# A term each chapter is about, which its pages must contain (besides its title).
MAIN_TERMS = {
    "chapters/01_derivatives": "central difference",
    "chapters/02_chain_rule": "computational graph",
    "chapters/03_four_equations": "BP1",
    "chapters/04_matrix_form": "Jacobian",
    "chapters/05_training": "momentum",
    "chapters/06_softmax": "log-sum-exp",
    "chapters/07_convolution": "cross-correlation",
    "chapters/08_bptt": "LSTM",
    "chapters/09_batchnorm": "variance",
    "chapters/10_reverse_mode": "adjoint",
}
XHTML = "{http://www.w3.org/1999/xhtml}"


def run(*args):
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout


@cache
def toc():
    return yaml.safe_load((ROOT / "_toc.yml").read_text())


@cache
def toc_pages():
    """[(docname, numbered)] in the order of _toc.yml, the root page left out."""
    pages = []
    for part in toc().get("parts", []):
        for entry in part.get("chapters", []):
            pages.append((entry["file"], bool(part.get("numbered", False))))
    return pages


def source(docname):
    for suffix in (".ipynb", ".md"):
        if (ROOT / (docname + suffix)).exists():
            return ROOT / (docname + suffix)
    raise FileNotFoundError(docname)


def markdown_and_code(docname):
    """(markdown text, code cells) of a page of the book."""
    path = source(docname)
    if path.suffix == ".md":
        return path.read_text(), []
    cells = json.loads(path.read_text())["cells"]
    markdown = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    return markdown, [c for c in cells if c["cell_type"] == "code"]


def title(docname):
    text, _ = markdown_and_code(docname)
    return next(line[2:].strip() for line in text.splitlines() if line.startswith("# "))


@cache
def pages():
    """The text of every page, in order (pdftotext ends each page with a form feed)."""
    return run("pdftotext", str(PDF), "-").split("\f")[:-1]


def normalized(text):
    """Text with line breaks undone: 'cross-en-\\ntropy' -> 'cross-entropy', spaces single."""
    return re.sub(r"\s+", " ", re.sub(r"-\n(?=\w)", "-", text))


def contains(text, phrase):
    text, phrase = normalized(text).lower(), phrase.lower()
    return phrase in text or phrase in text.replace("- ", "-").replace("-", "")


@cache
def log():
    return (LATEX / "book.log").read_text(errors="replace")


@cache
def doc_labels():
    """docname -> (number, page label, title, anchor) from the \\newlabel{doc::doc} lines of book.aux."""
    found = {}
    pattern = re.compile(r"\\newlabel\{(.+?)::doc\}\{\{(.*?)\}\{(.*?)\}\{(.*?)\}\{(.*?)\}")
    for line in (LATEX / "book.aux").read_text().splitlines():
        match = pattern.match(line)
        if match:
            found[match.group(1)] = match.group(2, 3, 4, 5)
    return found


def physical_page(label):
    """Index (from 0) of the page whose footer prints this page label."""
    for index, text in enumerate(pages()):
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        if lines and lines[-1] == label:
            return index
    raise AssertionError(f"no page has the footer {label!r}")


def test_pdf_built():
    assert PDF.is_file() and PDF.stat().st_size > 100_000
    assert "XeTeX" in log().splitlines()[0]


def test_log_has_no_error_and_no_unresolved_reference():
    errors = [line for line in log().splitlines() if line.startswith("!")]
    assert not errors, errors
    undefined = re.findall(r"(?:Reference|Citation) `[^']*' on page \d+ undefined", log())
    assert not undefined, undefined
    assert "There were undefined references" not in log()


def test_no_character_missing_from_a_font():
    missing = sorted(set(re.findall(r"Missing character: There is no .*", log())))
    assert not missing, missing


def test_no_code_overfull_in_the_log():
    # The code font's name as TeX writes it in a box (\TU/DejaVuSansMono(0)/m/n/...).
    mono = re.search(r"\\setmonofont\{([^}]*)\}", (ROOT / "_latex" / "backprop.sty").read_text()).group(1)
    boxes = re.findall(r"^Overfull \\hbox \(([\d.]+)pt too wide\).*\n(.*)", log(), flags=re.M)
    in_code = [(width, text) for width, text in boxes if mono.replace(" ", "") in text]
    assert not in_code, f"code past the right margin: {in_code}"


def test_nothing_past_the_bottom_margin():
    # Less than a line (13.6 pt at 11 pt) is the frame of an admonition split below a
    # line with a tall fraction; a code cell that did not break across pages stood
    # 70 to 100 pt past the margin.
    boxes = [float(h) for h in re.findall(r"^Overfull \\vbox \(([\d.]+)pt too high\)", log(), flags=re.M)]
    assert max(boxes, default=0) < 13.6, boxes


def test_every_page_of_the_toc_is_in_the_pdf_numbered_as_in_html():
    labels = doc_labels()
    number = 0
    for docname, numbered in toc_pages():
        assert docname in labels, f"{docname} is not in the PDF"
        got_number, _, got_title, anchor = labels[docname]
        assert got_title.replace("\\sphinxhyphen {}", "-") == title(docname)
        if numbered:
            number += 1
            assert (got_number, anchor) == (str(number), f"chapter.{number}"), docname
        else:
            assert anchor.startswith("chapter*"), f"{docname} has a number in the PDF, none in the HTML book"


def test_table_of_contents_lists_every_title_with_a_page():
    start = next(i for i, text in enumerate(pages()) if text.lstrip().upper().startswith("CONTENTS"))
    end = physical_page(doc_labels()[toc()["root"]][1])  # the introduction follows
    contents = "\n".join(pages()[start:end])
    for docname, _ in toc_pages():
        assert contains(contents, title(docname)), f"'{title(docname)}' is not in the table of contents"
    assert len(re.findall(r"^\d+$", contents, flags=re.M)) >= len(toc_pages())  # page numbers


def test_each_chapter_has_its_title_and_main_term_on_its_pages():
    labels, order = doc_labels(), [doc for doc, _ in toc_pages()]
    starts = [physical_page(labels[doc][1]) for doc in order] + [len(pages())]
    checked = 0
    for index, docname in enumerate(order):
        text = "\n".join(pages()[starts[index]:max(starts[index + 1], starts[index] + 1)])
        assert contains(text, title(docname)), docname
        term = MAIN_TERMS.get(docname)
        if term is not None:
            assert contains(text, term), f"'{term}' not on the pages of {docname}"
            checked += 1
    assert checked == len(MAIN_TERMS), "a chapter of MAIN_TERMS is missing from _toc.yml"


def test_no_unresolved_reference_and_page_references_exist():
    text = "\n".join(pages())
    assert "??" not in text
    last = max(int(label) for _, label, _, _ in doc_labels().values() if label.isdigit())
    refs = [int(n) for n in re.findall(r"\(page (\d+)\)", normalized(text))]
    assert len(refs) >= 20, "cross-references carry their page numbers"
    assert all(1 <= n <= last + 60 for n in refs), max(refs)


def shown_images(cell):
    tags = set(cell.get("metadata", {}).get("tags", []))
    if tags & {"remove-output", "remove-cell", "hide-output"}:
        return 0
    kinds = ("image/png", "image/jpeg", "image/svg+xml", "application/pdf")
    return sum(any(k in out.get("data", {}) for k in kinds) for out in cell.get("outputs", []))


def test_every_figure_is_embedded():
    expected = sum(shown_images(c) for doc, _ in toc_pages() for c in markdown_and_code(doc)[1])
    figures = sum("figure" in c["metadata"].get("mystnb", {}) for doc, _ in toc_pages() for c in markdown_and_code(doc)[1])
    listing = run("pdfimages", "-list", str(PDF)).splitlines()[2:]
    embedded = sum(1 for row in listing if row.split()[2] == "image")
    assert embedded >= expected >= figures


DIRECTIVE = re.compile(r"^([`:]{3,})\{(prf:\w+|exercise|exercise-start|solution|solution-start)\}.*\n((?:\s*:[\w-]+:.*\n)*)", re.M)


def test_exercises_solutions_and_propositions_are_rendered():
    sources = "\n".join(markdown_and_code(doc)[0] for doc, _ in toc_pages())
    directives = [(m.group(2), ":nonumber:" in m.group(3)) for m in DIRECTIVE.finditer(sources)]
    solutions = sum(kind.startswith("solution") for kind, _ in directives)
    text = normalized("\n".join(pages()))
    assert text.count("Solution to Exercise") >= solutions > 0
    # An admonition that lost its number reads "Proposition (BP1)"; only :nonumber: ones may.
    for kind in {"Proposition", "Theorem", "Lemma", "Definition", "Algorithm", "Exercise"}:
        allowed = sum(nonumber for name, nonumber in directives if kind.lower() in name)
        without = re.findall(rf"(?<!Solution to )\b{kind} \((?!page)", text)
        assert len(without) <= allowed, f"{len(without)} of '{kind} (...)' without a number, {allowed} allowed"


@cache
def page_lines():
    """[(page, page width, [(xmin, xmax, word), ...])] for every line (pdftotext -bbox-layout)."""
    tree = ET.fromstring(run("pdftotext", "-bbox-layout", str(PDF), "-"))
    lines = []
    for number, page in enumerate(tree.iter(XHTML + "page"), start=1):
        for line in page.iter(XHTML + "line"):
            words = [(float(w.get("xMin")), float(w.get("xMax")), w.text or "") for w in line.iter(XHTML + "word")]
            lines.append((number, float(page.get("width")), words))
    return lines


def words_by_line():
    return [(page, words) for page, _, words in page_lines() if words]


def monospace_pitch(words):
    """The advance of one character if every word and gap of the line is a whole number of
    equal character cells (a line set in the code font), else None."""
    if len(words) < 3:
        return None
    pitch = statistics.median((x1 - x0) / len(w) for x0, x1, w in words)
    for x0, x1, w in words:
        if abs((x1 - x0) - pitch * len(w)) > 0.02 * pitch * len(w):
            return None
    for (_, end, _), (start, _, _) in zip(words, words[1:]):
        gap = (start - end) / pitch
        if gap < 0.9 or abs(gap - round(gap)) > 0.05:
            return None
    return pitch


def test_code_lines_fit_the_text_width():
    lines = words_by_line()
    right = statistics.quantiles([ws[-1][1] for _, ws in lines if ws], n=20)[-1]  # justified text's edge
    code = [(page, ws, pitch) for page, ws in lines if (pitch := monospace_pitch(ws))]
    block_pitch = statistics.mode(round(p, 2) for _, _, p in code)  # the code blocks' size
    blocks = [(page, ws) for page, ws, p in code if abs(p - block_pitch) < 0.02]
    assert len(blocks) > 200, "code lines were found in the PDF"
    past = [(page, " ".join(w for _, _, w in ws)) for page, ws in blocks if ws[-1][1] > right + 0.5]
    assert not past, f"code past the right edge of the text ({right:.1f} pt): {past[:3]}"
    left = statistics.mode(round(ws[0][0]) for _, ws in blocks)  # where a code cell's lines start
    capacity = (right - left) / block_pitch
    assert capacity >= CODE_WIDTH, f"a code block holds {capacity:.1f} characters, fewer than {CODE_WIDTH}"


def test_nothing_cut_at_the_page_edge():
    # A formula or table a little too wide may reach into the 2.5 cm margin (TeX reports
    # it as an overfull box); nothing may come within 1 cm of the paper's edge.
    cm = 72 / 2.54
    near_edge = [(page, words[-1][2]) for page, width, words in page_lines()
                 if words and (words[0][0] < cm or max(x1 for _, x1, _ in words) > width - cm)]
    assert not near_edge, near_edge[:5]


def test_bibliography_lists_every_entry():
    entries = re.findall(r"^@\w+\{", (ROOT / "references.bib").read_text(), flags=re.M)
    start = physical_page(doc_labels()["chapters/bibliography"][1]) if "chapters/bibliography" in doc_labels() else 0
    text = "\n".join(pages()[start:])
    labels = set(re.findall(r"^\[[^\]\s]{2,24}\]", text, flags=re.M))  # [AK98], [Kar], ...
    assert len(labels) >= len(entries) > 0


def test_pages_render(tmp_path):
    run("pdftoppm", "-r", "30", "-f", "1", "-l", "1", "-png", str(PDF), str(tmp_path / "p"))
    assert list(tmp_path.glob("p*.png"))


def test_html_book_links_the_pdf_only_beside_it():
    html = ROOT / "_build" / "html"
    if not html.is_dir():
        pytest.skip("no HTML book built")
    links = [(page, href) for page in html.rglob("*.html") if "_static" not in page.parts
             for href in re.findall(r'href="([^"#]*book\.pdf)"', page.read_text(errors="replace"))]
    for page, href in links:
        assert (page.parent / href).resolve().is_file(), f"{page.name} links {href}, which is missing"
