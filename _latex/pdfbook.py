"""The printable PDF's part of the Sphinx build (`make pdf`; the style is backprop.sty).

For the LaTeX builder, on top of sphinx-jupyterbook-latex:

- Numbers as in the HTML book. sphinx-jupyterbook-latex numbers figures,
  propositions and exercises by section ("Proposition 1.4.2") where the HTML book
  numbers them by chapter ("Proposition 1.2"); the setting is put back to one level
  (backprop.sty numbers LaTeX's own figure and equation counters by chapter again).
- The parts of `_toc.yml`: a part that the HTML book numbers gets numbered chapters,
  the others unnumbered ones, as in the HTML book (``\\bpNumberedPart`` and
  ``\\bpUnnumberedPart`` in backprop.sty). The introduction opens with a chapter
  heading of its own (``\\bpIntroduction``), its sections as unnumbered sections.
- Cross-references that resolve. sphinx-proof finds the page of a proposition by
  matching section names, which fails on some pages (the proposition then has no
  number and its label is ``None:...``); here the page is the enclosing
  ``start_of_file``. sphinx-exercise labels an exercise ``exercise:<label>``, while a
  reference from another page asks for ``<page>:<label>`` with the exercise's number:
  that label is added (``\\bpLabel``).

For the HTML builder, the role ``{pdf-download}`text``` links the PDF when `make pdf`
has built it (``_build/latex/book.pdf``): the PDF is copied beside the pages and the
role becomes a link with the file's size. Without a PDF the role's paragraph is left
out, so the HTML book never links a missing file.
"""

import shutil
from pathlib import Path

from docutils import nodes
from sphinx import addnodes
from sphinx.application import Sphinx
from sphinx.builders.latex import LaTeXBuilder
from sphinx.transforms.post_transforms import SphinxPostTransform
from sphinx.util.texescape import escape as tex_escape

PDF = Path("_build") / "latex" / "book.pdf"  # relative to the book's root (srcdir)


def walk(node, docname):
    """(node, its container, its document) for every element under node, top down.

    The assembled LaTeX doctree is walked from the top, not up through ``parent``:
    sphinx-jupyterbook-latex moves children between nodes without updating their
    parent pointers.
    """
    for child in list(node.children):
        if isinstance(child, nodes.Element):
            inner = child["docname"] if isinstance(child, addnodes.start_of_file) else docname
            yield child, node, inner
            yield from walk(child, inner)


def tex_label(docname, label):
    """The argument Sphinx's LaTeX writer gives \\label and \\ref for docname:label."""
    return r"\detokenize{%s:%s}" % (docname, label)


def raw_latex(text):
    return nodes.raw("", text, format="latex")


def setup_latex(app: Sphinx):
    if not isinstance(app.builder, LaTeXBuilder):
        return
    app.config.numfig_secnum_depth = 1
    import sphinx_exercise.post_transforms
    import sphinx_exercise.utils
    import sphinx_proof.nodes

    def find_parent(env, node, parent_tag):
        return node.get("bp_docname", app.config.root_doc)

    for module in (sphinx_proof.nodes, sphinx_exercise.utils, sphinx_exercise.post_transforms):
        module.find_parent = find_parent


class LatexStructure(SphinxPostTransform):
    """Parts, the introduction's headings and the exercises' labels (after jblatex's 700)."""

    default_priority = 800
    builders = ("latex",)

    def run(self, **kwargs):
        root = self.config.root_doc
        if self.app.project.path2doc(self.document["source"]) != root:
            return
        from sphinx_exercise.nodes import exercise_enumerable_node
        from sphinx_jupyterbook_latex.nodes import RootHeader

        sitemap = getattr(self.config, "external_site_map", None)
        numbered = {sub.caption: bool(sub.numbered) for sub in sitemap.root.subtrees} if sitemap else {}
        for node, container, docname in list(walk(self.document, root)):
            if "label" in node:  # a proposition, proof, exercise or solution
                node["bp_docname"] = docname  # read by find_parent, set up above
            if isinstance(node, addnodes.start_of_file) and node["docname"] in numbered:
                macro = r"\bpNumberedPart" if numbered[node["docname"]] else r"\bpUnnumberedPart"
                container.insert(container.index(node), raw_latex(macro + "\n"))
            elif isinstance(node, RootHeader):
                command = r"\section*" if node["level"] <= 2 else r"\subsection*"
                container.replace(node, raw_latex("%s{%s}\n" % (command, tex_escape(node.astext()))))
            elif isinstance(node, exercise_enumerable_node):
                number = self.env.toc_fignumbers.get(docname, {}).get("exercise", {}).get(node["ids"][0], ())
                text = r"\bpLabel{%s}{%s}" % (tex_label(docname, node["label"]), ".".join(map(str, number)))
                container.insert(container.index(node), raw_latex(text + "\n"))
        first = next((s for s in self.document.findall(nodes.section) if s.get("docname") == root), None)
        if first is not None:
            title = first.next_node(nodes.title)
            first.insert(first.index(title) + 1 if title else 0, raw_latex(r"\bpIntroduction" + "\n"))


class pdf_download(nodes.Inline, nodes.TextElement):
    """Placeholder for the link to the PDF, resolved when the pages are written."""


def pdf_download_role(name, rawtext, text, lineno, inliner, options=None, content=None):
    return [pdf_download(rawtext, text)], []


class ResolvePdfDownload(SphinxPostTransform):
    """A link to book.pdf where the PDF exists and the builder writes HTML; else nothing."""

    default_priority = 900

    def run(self, **kwargs):
        pdf = Path(self.app.srcdir) / PDF
        for node in list(self.document.findall(pdf_download)):
            if self.app.builder.format == "html" and pdf.is_file():
                size = "%.1f MB" % (pdf.stat().st_size / 1e6)
                uri = "../" * self.env.docname.count("/") + "book.pdf"
                link = nodes.reference("", node.astext(), refuri=uri, internal=False)
                node.replace_self([link, nodes.Text(" (%s)" % size)])
            else:
                parent = node.parent
                node.parent.remove(node)
                if isinstance(parent, nodes.paragraph) and not parent.astext().strip():
                    parent.parent.remove(parent)


def copy_pdf(app: Sphinx, exception):
    pdf = Path(app.srcdir) / PDF
    if exception is None and app.builder.format == "html" and pdf.is_file():
        shutil.copyfile(pdf, Path(app.outdir) / "book.pdf")


def setup(app: Sphinx):
    app.connect("builder-inited", setup_latex, priority=900)
    app.add_post_transform(LatexStructure)
    app.add_node(pdf_download)
    app.add_role("pdf-download", pdf_download_role)
    app.add_post_transform(ResolvePdfDownload)
    app.connect("build-finished", copy_pdf)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
