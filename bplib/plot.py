"""Drawing a computational graph of ``bplib.scalar.Value`` nodes (chapter 2), and showing library source.

A leaf module: it imports bplib.scalar, and nothing in bplib imports it.
Matplotlib is imported only when a figure is drawn, so the layout can be
computed (and tested) without it.

The layout reads left to right. An operation's column is its layer: the
length of the longest path from any leaf to it, so every edge points
rightwards; a leaf sits just before its first use. Within a column, nodes are
ordered by the mean height of their neighbours, which keeps most edges short
and uncrossed.
"""

import inspect
import numbers
import textwrap

from bplib.scalar import Value

LEAF_COLOR, OP_COLOR, OUTPUT_COLOR = "#dbe9f6", "#fdebd0", "#d5f5e3"


def _check_value(fn, value):
    if not isinstance(value, Value):
        raise TypeError(f"{fn}: argument 'value' must be a bplib.scalar.Value, got {type(value).__name__}")


def _mean(values, default=0.0):
    values = list(values)
    return sum(values) / len(values) if values else default


def graph_layers(value):
    """layer(node) = 0 for a leaf, else 1 + the largest layer among its parents.

    Parameters: value, a Value (the output of the graph). Returns: a dict from
    each node of the graph to its layer, the output having the largest one.
    Used in chapter 2.
    """
    _check_value("graph_layers", value)
    layer = {}
    for node in value.topological_order():  # parents always come before their children
        layer[node] = 1 + max((layer[p] for p in node.parents), default=-1)
    return layer


def _place(column, x, pos, key):
    """Sort a column by ``key`` (higher first) and spread it around y = 0, one unit apart."""
    column.sort(key=lambda n: -key(n))
    for i, node in enumerate(column):
        pos[node] = (float(x), (len(column) - 1) / 2.0 - i)


def graph_layout(value):
    """Positions (x, y) of every node: x its column, y its row, rows centred on 0.

    An operation's column is its layer (see graph_layers); a leaf is drawn in the
    column just before its first use, so that constants and biases sit next to
    the node that consumes them. Rows are ordered by the mean height of each
    node's neighbours (parents for operations, children for leaves), in a few
    sweeps. Parameters: value, a Value. Returns: a dict from node to (x, y);
    every edge goes from a smaller x to a larger one. Used in chapter 2.
    """
    _check_value("graph_layout", value)
    layer = graph_layers(value)
    order = value.topological_order()
    children = {node: [] for node in order}
    for node in order:
        for p in node.parents:
            children[p].append(node)
    column = {n: layer[n] if n.parents or not children[n] else min(layer[c] for c in children[n]) - 1 for n in order}
    columns = [[] for _ in range(max(column.values()) + 1)]
    for node in order:
        columns[column[node]].append(node)
    pos, rank = {}, {node: i for i, node in enumerate(order)}
    for x, nodes in enumerate(columns):  # start in the order the nodes were computed
        _place(nodes, x, pos, lambda n: -rank[n])
    for _ in range(3):
        for x, nodes in enumerate(columns):
            _place(nodes, x, pos, lambda n: _mean(pos[m][1] for m in (n.parents or children[n])))
    return pos


def _check_options(digits, edge_labels):
    if isinstance(digits, bool) or not isinstance(digits, numbers.Integral):
        raise TypeError(f"draw_graph: argument 'digits' must be an int, got {type(digits).__name__}")
    if digits < 1:
        raise ValueError(f"draw_graph: argument 'digits' must be at least 1 (the significant digits printed), got {digits}")
    if not isinstance(edge_labels, bool):
        raise TypeError(f"draw_graph: argument 'edge_labels' must be a bool, got {type(edge_labels).__name__}")


def _node_text(node, digits):
    name = node.label or "input"
    if node.parents:
        name = f"{node.label} = {node.op}" if node.label else node.op
    return f"{name}\ndata {node.data:.{digits}g}\ngrad {node.grad:.{digits}g}"


def _node_color(node, value):
    return OUTPUT_COLOR if node is value else (OP_COLOR if node.parents else LEAF_COLOR)


def draw_graph(value, ax=None, *, title="Computational graph", digits=4, fontsize=9.5, max_nodes=80, edge_labels=False):
    """Draw the graph that computes ``value``: one box per node (its operation or name,
    data and grad), one arrow per edge, inputs on the left and the output on the right.

    Parameters: value, a Value; ax, a matplotlib Axes (a new figure when None);
    title, the axes title; digits, significant digits printed (an int, at least 1);
    fontsize, in points; max_nodes, the largest graph drawn (a bigger one would not be
    legible); edge_labels, if True each arrow carries the local derivative of its head
    with respect to its tail, in a text whose gid is ``f"edge:{id(child)}:{k}"`` for
    the k-th parent of ``child``. Returns: the Axes. Used in chapter 2.
    """
    _check_value("draw_graph", value)
    _check_options(digits, edge_labels)
    pos = graph_layout(value)
    if len(pos) > max_nodes:
        raise ValueError(f"draw_graph: the graph has {len(pos)} nodes, more than max_nodes={max_nodes} can show legibly")
    import matplotlib.pyplot as plt  # imported here: bplib itself needs numpy only

    n_cols = 1 + max(x for x, _ in pos.values())
    n_rows = max(sum(1 for x, _ in pos.values() if x == c) for c in range(int(n_cols)))
    if ax is None:
        fig, ax = plt.subplots(figsize=(min(1.45 * n_cols + 0.3, 9.0), 0.85 * n_rows + 1.3))
        fig.subplots_adjust(left=0.01, right=0.99)
    boxes = {}
    for node, (x, y) in pos.items():
        boxes[node] = ax.text(x, y, _node_text(node, digits), ha="center", va="center", fontsize=fontsize, family="monospace",
                              zorder=3, bbox=dict(boxstyle="round,pad=0.3", fc=_node_color(node, value), ec="0.35"))
    edges = _draw_edges(ax, boxes, fontsize)
    ax.set_xlim(-0.6, n_cols - 0.4)
    ax.set_ylim(-n_rows / 2.0 - 0.3, n_rows / 2.0 + 0.3)  # room for the curved long edges
    if edge_labels:
        _draw_edge_labels(ax, boxes, edges, digits, fontsize)
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.set_xlabel("forward: left to right; backward: right to left")
    ax.set_title(title)
    return ax


def _draw_edges(ax, boxes, fontsize):
    """One arrow per edge, from the right side of a parent's box to the left side of the child's.

    Returns one (child, k, arrive, rad) per edge: the k-th parent of child, the point of
    the child's box (as fractions of it) where the arrow arrives, and the arc's bend.
    """
    gap = 0.3 * fontsize + 1.0  # the box padding in points, so arrows stop at the box edge
    parent_xy = {node: box.get_position() for node, box in boxes.items()}
    edges = []
    for child, box in boxes.items():
        n = len(child.parents)
        # arrows arrive spread over the child's left side, the highest parent's arrow highest
        rank = sorted(range(n), key=lambda k: boxes[child.parents[k]].get_position()[1])
        for k, parent in enumerate(child.parents):
            repeats = child.parents.count(parent)  # x * x: two edges between the same pair of nodes
            rad = 0.0 if repeats == 1 else (0.3 if k == child.parents.index(parent) else -0.3)
            (x0, y0), x1 = parent_xy[parent], box.get_position()[0]
            if repeats == 1 and x1 - x0 > 1:  # a long edge bows outwards, around the boxes it passes
                rad = 0.3 if y0 < 0 else -0.3
            arrive = (0.0, 0.5 if repeats > 1 else (1 + rank.index(k)) / (n + 1))
            ax.annotate("", xy=arrive, xycoords=box, xytext=(1.0, 0.5), textcoords=boxes[parent], zorder=1,
                        arrowprops=dict(arrowstyle="-|>", color="0.35", lw=1.0, shrinkA=gap, shrinkB=gap,
                                        connectionstyle=f"arc3,rad={rad}"))
            edges.append((child, k, arrive, rad))
    return edges


def _draw_edge_labels(ax, boxes, edges, digits, fontsize):
    """Write each edge's local derivative at the middle of its arrow, on a pale box.

    The arrows are placed in display coordinates from the boxes' extents, so the
    middle is computed there too and converted back to data coordinates.
    """
    to_data = ax.transData.inverted()
    for child, k, arrive, rad in edges:
        p, c = boxes[child.parents[k]].get_window_extent(), boxes[child].get_window_extent()
        x0, y0 = p.x1, p.y0 + 0.5 * p.height
        x1, y1 = c.x0 + arrive[0] * c.width, c.y0 + arrive[1] * c.height
        # arc3 puts its control point rad * (dy, -dx) from the chord's middle; the curve passes halfway
        middle = ((x0 + x1) / 2 + rad * (y1 - y0) / 2, (y0 + y1) / 2 - rad * (x1 - x0) / 2)
        ax.text(*to_data.transform(middle), f"{child.local_grads[k]:.{digits}g}", ha="center", va="center",
                fontsize=fontsize - 1.5, color="#7b3f00", zorder=4, gid=f"edge:{id(child)}:{k}",
                bbox=dict(boxstyle="round,pad=0.15", fc="#fffbe6", ec="#e0c070", lw=0.6))


class SourceCode:
    """Library source for a notebook: Markdown for the HTML book, coloured HTML for JupyterLab.

    The book (myst-nb) renders the Markdown code block with its own theme;
    JupyterLab's MyST renderer gives code blocks no colours, so it shows the
    HTML form, highlighted by Pygments with inline colours.
    """

    def __init__(self, name, text):
        self.name, self.text = name, text

    def __repr__(self):
        return f"<source of {self.name}>"

    def _repr_markdown_(self):
        return "```python\n" + self.text + "\n```"

    def _repr_html_(self):
        from pygments import highlight  # imported here: only notebooks call this
        from pygments.formatters import HtmlFormatter
        from pygments.lexers import PythonLexer

        return highlight(self.text, PythonLexer(), HtmlFormatter(noclasses=True, nobackground=True))


def show_source(obj):
    """The source of a bplib function or class as a highlighted code block, for a notebook cell.

    The library is shown from the library itself, never pasted: the HTML book
    renders the Markdown form, JupyterLab the HTML form (see SourceCode). A
    method's source is dedented, so that it starts at the left margin.
    Parameters: obj, a function, method, class or module.
    Returns: a SourceCode display object. Used in every chapter.
    """
    if not (inspect.isfunction(obj) or inspect.isclass(obj) or inspect.ismodule(obj) or inspect.ismethod(obj)):
        raise TypeError(f"show_source: argument 'obj' must be a function, class or module, got {type(obj).__name__}")
    name = f"{obj.__module__}.{obj.__qualname__}" if not inspect.ismodule(obj) else obj.__name__
    return SourceCode(name, textwrap.dedent(inspect.getsource(obj)).rstrip())
