"""Tests of bplib.plot: the layered layout of a Value graph and its matplotlib drawing."""

import inspect
import pathlib
import subprocess
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
from matplotlib.text import Annotation  # noqa: E402

from bplib.plot import draw_graph, graph_layers, graph_layout, show_source  # noqa: E402
from bplib.scalar import Value  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]


def neuron():
    """a = sigmoid(x1 w1 + x2 w2 + b): 10 nodes, 9 edges, backward already run."""
    x1, w1, x2, w2, b = (Value(v, label=n) for v, n in [(2.0, "x1"), (-3.0, "w1"), (0.0, "x2"), (1.0, "w2"), (6.88, "b")])
    a = (x1 * w1 + x2 * w2 + b).sigmoid()
    a.backward()
    return a


def boxes_and_arrows(ax):
    boxes = [t for t in ax.texts if not isinstance(t, Annotation) and t.get_bbox_patch() is not None]
    arrows = [t for t in ax.texts if isinstance(t, Annotation) and t.arrow_patch is not None]
    return boxes, arrows


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_one_box_per_node_and_one_arrow_per_edge():
    a = neuron()
    ax = draw_graph(a)
    ax.figure.canvas.draw()  # the arrows are placed at draw time; this must not fail
    boxes, arrows = boxes_and_arrows(ax)
    nodes = a.topological_order()
    assert len(boxes) == len(nodes) == 10
    assert len(arrows) == sum(len(n.parents) for n in nodes) == 9


def test_a_repeated_operand_draws_two_arrows():
    x = Value(3.0, label="x")
    y = x * x
    y.backward()
    boxes, arrows = boxes_and_arrows(draw_graph(y))
    assert (len(boxes), len(arrows)) == (2, 2)


def test_each_box_shows_operation_value_and_gradient():
    a = neuron()
    texts = [t.get_text() for t in boxes_and_arrows(draw_graph(a, digits=4))[0]]
    assert "x1\ndata 2\ngrad -0.6217" in texts  # da/dx1 = sigma'(0.88) w1 = 0.20722 * (-3)
    assert "sigmoid\ndata 0.7068\ngrad 1" in texts  # sigma(0.88) = 0.70683
    assert sum(t.startswith("*\n") for t in texts) == 2 and sum(t.startswith("+\n") for t in texts) == 2


def test_draws_into_a_given_axes_with_title_and_label():
    fig, ax = plt.subplots()
    out = draw_graph(neuron(), ax=ax, title="a neuron")
    assert out is ax and ax.get_title() == "a neuron" and ax.get_xlabel()


def test_layers_are_longest_distances_from_the_leaves():
    a, b = Value(1.0), Value(2.0)
    c = a * b
    y = a + c.tanh()  # a reaches y directly and through c: the longest path decides
    layer = graph_layers(y)
    assert (layer[a], layer[b], layer[c], layer[y]) == (0, 0, 1, 3)


def test_layout_points_every_edge_rightwards_without_overlaps():
    a = neuron()
    pos = graph_layout(a)
    assert all(pos[p][0] < pos[n][0] for n in pos for p in n.parents)
    assert len(set(pos.values())) == len(pos)
    assert pos[a][0] == max(x for x, _ in pos.values())


@pytest.mark.parametrize("fn", [draw_graph, graph_layout, graph_layers])
def test_a_non_value_is_a_type_error(fn):
    with pytest.raises(TypeError, match=rf"{fn.__name__}: argument 'value' must be a bplib.scalar.Value, got float"):
        fn(1.5)


def test_a_graph_too_big_to_read_is_refused():
    y = Value(1.0)
    for _ in range(50):
        y = y * 2.0
    with pytest.raises(ValueError, match="draw_graph: the graph has 101 nodes, more than max_nodes=80"):
        draw_graph(y)


def edge_label_texts(ax):
    return [t for t in ax.texts if (t.get_gid() or "").startswith("edge:")]


def test_edge_labels_give_each_edge_its_local_derivative():
    a = neuron()
    ax = draw_graph(a, edge_labels=True, digits=3)
    labels = {t.get_gid(): t.get_text() for t in edge_label_texts(ax)}
    nodes = a.topological_order()
    expected = {f"edge:{id(n)}:{k}": f"{g:.3g}" for n in nodes for k, g in enumerate(n.local_grads)}
    assert labels == expected and len(labels) == 9
    assert expected[f"edge:{id(a)}:0"] == f"{0.70683 * (1 - 0.70683):.3g}"  # sigma'(0.88) on the sigmoid's edge


def test_each_edge_label_sits_between_its_two_boxes():
    a = neuron()
    ax = draw_graph(a, edge_labels=True)
    pos = graph_layout(a)
    by_gid = {t.get_gid(): t.get_position() for t in edge_label_texts(ax)}
    for child in pos:
        for k, parent in enumerate(child.parents):
            x, _ = by_gid[f"edge:{id(child)}:{k}"]
            assert pos[parent][0] < x < pos[child][0]


def test_a_repeated_operand_gets_two_labels_apart():
    x = Value(3.0, label="x")
    y = x * x
    y.backward()
    labels = edge_label_texts(draw_graph(y, edge_labels=True))
    assert [t.get_text() for t in labels] == ["3", "3"]
    assert labels[0].get_position()[1] != labels[1].get_position()[1]  # one above, one below


def test_edge_labels_are_off_by_default():
    assert edge_label_texts(draw_graph(neuron())) == []


@pytest.mark.parametrize("digits", [0, -1])
def test_digits_below_one_is_a_value_error(digits):
    with pytest.raises(ValueError, match=rf"draw_graph: argument 'digits' must be at least 1 .*got {digits}$"):
        draw_graph(neuron(), digits=digits)


@pytest.mark.parametrize("digits, name", [(2.5, "float"), ("4", "str"), (True, "bool")])
def test_digits_that_is_not_an_int_is_a_type_error(digits, name):
    with pytest.raises(TypeError, match=f"draw_graph: argument 'digits' must be an int, got {name}"):
        draw_graph(neuron(), digits=digits)


def test_edge_labels_that_is_not_a_bool_is_a_type_error():
    with pytest.raises(TypeError, match="draw_graph: argument 'edge_labels' must be a bool, got int"):
        draw_graph(neuron(), edge_labels=1)


def test_plot_is_a_leaf_and_imports_matplotlib_lazily():
    for path in (ROOT / "bplib").glob("*.py"):
        if path.name != "plot.py":
            assert "plot" not in path.read_text().replace("matplotlib", ""), f"{path.name} must not import bplib.plot"
    code = "import sys, bplib.plot; assert 'matplotlib' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_show_source_of_a_method_starts_at_the_left_margin():
    text = show_source(Value.__add__)._repr_markdown_()
    assert text.startswith("```python\ndef __add__(self, other):")
    assert inspect.getsource(Value.__add__).startswith("    def __add__")  # indented in the class


def test_show_source_is_the_library_source_as_a_python_block():
    from bplib import activations

    src = show_source(activations.relu_backward)
    text = src._repr_markdown_()
    assert text.startswith("```python\ndef relu_backward(dout, cache):") and text.endswith("\n```")
    assert inspect.getsource(activations.relu_backward).rstrip() in text
    assert repr(src) == "<source of bplib.activations.relu_backward>"
    # the HTML form (what JupyterLab shows) carries its colours inline: no stylesheet needed
    html = src._repr_html_()
    assert "relu_backward" in html and 'style="color:' in html and "class=" in html.split(">")[0]
    with pytest.raises(TypeError, match="'obj' must be a function, class or module, got int"):
        show_source(3)
