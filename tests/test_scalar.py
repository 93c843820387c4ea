"""Tests of bplib.scalar.Value: values, gradients against central differences, errors."""

import ast
import math
import pathlib

import numpy as np
import pytest
from hypothesis import assume, given
from strategies import scalar_leaves, scalar_steps

from bplib.gradcheck import numerical_derivative, numerical_gradient
from bplib.scalar import Value

# Ops for random programs; each keeps its arguments inside the op's domain, so every
# program is differentiable wherever relu's input is away from its kink.
OPS = [
    lambda a, b: a + b,
    lambda a, b: a - b,
    lambda a, b: a * b,
    lambda a, b: a / (1.0 + b * b),
    lambda a, b: 2.0 * a - 1.0,
    lambda a, b: 1.0 - a,
    lambda a, b: 3.0 / (2.0 + a.sigmoid()),
    lambda a, b: -a,
    lambda a, b: a.tanh(),
    lambda a, b: a.sigmoid(),
    lambda a, b: a.relu(),
    lambda a, b: a.tanh().exp(),
    lambda a, b: (1.0 + a * a).log(),
    lambda a, b: a**2,
    lambda a, b: a**3 / 4.0,
    lambda a, b: (a * a + 1.0) ** 0.5,
]


def run_program(leaves, steps):
    """The Value made by a program, and the smallest |input| of any relu on the way."""
    pool, nearest_kink = list(leaves), math.inf
    for op, i, j in steps:
        a, b = pool[i % len(pool)], pool[j % len(pool)]
        if OPS[op % len(OPS)] is OPS[10]:
            nearest_kink = min(nearest_kink, abs(a.data))
        pool.append(OPS[op % len(OPS)](a, b))
    return pool[-1], nearest_kink


@given(scalar_leaves, scalar_steps)
def test_random_programs_match_central_differences(xs, steps):
    leaves = [Value(x) for x in xs]
    out, nearest_kink = run_program(leaves, steps)
    assume(nearest_kink > 1e-3)
    out.backward()
    ours = np.array([leaf.grad for leaf in leaves])
    numeric = numerical_gradient(lambda v: run_program([Value(float(t)) for t in v], steps)[0].data, np.array(xs))
    assert np.allclose(ours, numeric, rtol=1e-5, atol=1e-6)


# Each primitive: the value against the math module, the derivative against a central
# difference of the math function (independent of Value), at points inside its domain.
UNARY = [
    ("exp", lambda v: v.exp(), math.exp, [-3.0, 0.0, 2.5]),
    ("log", lambda v: v.log(), math.log, [0.1, 1.0, 7.0]),
    ("tanh", lambda v: v.tanh(), math.tanh, [-2.0, 0.0, 0.7]),
    ("sigmoid", lambda v: v.sigmoid(), lambda x: 1.0 / (1.0 + math.exp(-x)), [-4.0, 0.0, 3.0]),
    ("relu", lambda v: v.relu(), lambda x: max(0.0, x), [-2.0, 0.5, 3.0]),
    ("pow 2", lambda v: v**2, lambda x: x * x, [-1.5, 0.0, 2.0]),
    ("pow -1", lambda v: v**-1, lambda x: 1.0 / x, [-2.0, 0.5, 3.0]),
    ("pow 0.5", lambda v: v**0.5, math.sqrt, [0.25, 1.0, 9.0]),
    ("pow 0", lambda v: v**0, lambda x: 1.0, [-2.0, 0.0, 3.0]),
    ("neg", lambda v: -v, lambda x: -x, [-1.0, 2.0]),
    ("radd", lambda v: 3 + v, lambda x: 3 + x, [1.0]),
    ("rsub", lambda v: 1 - v, lambda x: 1 - x, [0.25]),
    ("rmul", lambda v: 2 * v, lambda x: 2 * x, [0.75]),
    ("rtruediv", lambda v: 10 / v, lambda x: 10 / x, [-4.0, 0.5]),
    ("truediv", lambda v: v / 4, lambda x: x / 4, [3.0]),
    ("sub", lambda v: v - 5, lambda x: x - 5, [3.0]),
]


@pytest.mark.parametrize("name, op, ref, points", UNARY, ids=[u[0] for u in UNARY])
def test_each_op_value_and_derivative(name, op, ref, points):
    for x in points:
        v = Value(x)
        out = op(v)
        out.backward()
        assert out.data == pytest.approx(ref(x), rel=1e-12, abs=1e-15)
        if name != "pow 0" or x != 0.0:
            assert v.grad == pytest.approx(numerical_derivative(ref, x), rel=1e-6, abs=1e-8)


def test_binary_ops_take_both_partials():
    a, b = Value(1.5), Value(-0.5)
    (a * b + a / b - b).backward()
    # d/da = b + 1/b = -2.5; d/db = a - a/b^2 - 1 = 1.5 - 6 - 1 = -5.5
    assert (a.grad, b.grad) == (pytest.approx(-2.5), pytest.approx(-5.5))


def test_relu_kink_and_negative_side_have_zero_gradient():
    for x in (0.0, -3.0):
        v = Value(x)
        v.relu().backward()
        assert v.grad == 0.0


@pytest.mark.parametrize("x", [1000.0, -1000.0, 745.0, -745.0])
def test_sigmoid_and_tanh_stay_finite_at_extreme_inputs(x):
    v = Value(x)
    s = v.sigmoid()
    s.backward()
    assert math.isfinite(s.data) and math.isfinite(v.grad)
    assert s.data == (1.0 if x > 0 else pytest.approx(0.0, abs=1e-300))
    t = Value(x).tanh()
    assert t.data == math.copysign(1.0, x)


def test_a_shared_subexpression_sums_its_gradients():
    a, b = Value(2.0), Value(3.0)
    c = a * b  # used three times below
    y = c * c + c
    y.backward()
    # y = (ab)^2 + ab: dy/dc = 2c + 1 = 13; dy/da = 13 b = 39; dy/db = 13 a = 26
    assert (c.grad, a.grad, b.grad) == (13.0, 39.0, 26.0)
    x = Value(3.0)
    (x * x).backward()  # the two edges to the same parent both count
    assert x.grad == 6.0


def test_leaves_accumulate_across_calls_and_zero_grad_resets():
    a, b = Value(2.0), Value(-1.0)
    c = a * b
    y = c.tanh()
    y.backward()
    first = (a.grad, b.grad, c.grad)
    y.backward()
    assert (a.grad, b.grad) == (2 * first[0], 2 * first[1])
    assert c.grad == first[2]  # interior nodes hold this call's gradient
    y.zero_grad()
    assert all(node.grad == 0.0 for node in y.topological_order())
    y.backward()
    assert (a.grad, b.grad, c.grad) == first


def test_backward_of_a_leaf_is_one():
    v = Value(4.0)
    v.backward()
    assert v.grad == 1.0


def test_a_deep_chain_does_not_hit_the_recursion_limit():
    x = Value(0.5)
    y = x
    for _ in range(5000):  # 10000 nodes, far beyond the default recursion limit of 1000
        y = y * 0.999 + 0.001
    y.backward()
    assert x.grad == pytest.approx(0.999**5000, rel=1e-9)
    assert len(y.topological_order()) == 1 + 5000 * 4  # x, and per step two constants and two ops


def test_topological_order_lists_each_node_once_after_its_parents():
    a, b = Value(1.0), Value(2.0)
    c = a * b
    y = (c + a).exp() * c
    order = y.topological_order()
    assert len(order) == len(set(order)) and order[-1] is y
    where = {node: i for i, node in enumerate(order)}
    assert all(where[p] < where[node] for node in order for p in node.parents)


def test_nodes_record_op_parents_and_local_derivatives():
    a, b = Value(2.0, label="a"), Value(5.0, label="b")
    c = a * b
    assert (c.op, c.parents, c.local_grads) == ("*", (a, b), (5.0, 2.0))
    assert (a.op, a.parents, a.label) == ("", (), "a")
    assert (a**3).op == "**3" and a.exp().op == "exp"
    assert "op='*'" in repr(c)


@pytest.mark.parametrize("expr, op", [
    (lambda v: v + "a", "__add__"),
    (lambda v: v - [1], "__sub__"),
    (lambda v: v * None, "__mul__"),
    (lambda v: v / "2", "__truediv__"),
    (lambda v: None + v, "__radd__"),
    (lambda v: None - v, "__rsub__"),
    (lambda v: "a" * v, "__rmul__"),
    (lambda v: None / v, "__rtruediv__"),
    (lambda v: v + True, "__add__"),
])
def test_a_non_numeric_operand_is_a_type_error_naming_the_op(expr, op):
    with pytest.raises(TypeError, match=rf"Value\.{op}: argument 'other' must be a Value or a real number"):
        expr(Value(1.0))


@pytest.mark.parametrize("k", [Value(2.0), "2", True, None])
def test_an_exponent_that_is_not_a_number_is_a_type_error(k):
    with pytest.raises(TypeError, match=r"Value\.__pow__: the exponent must be an int or float"):
        Value(2.0) ** k


@pytest.mark.parametrize("expr, match", [
    (lambda: Value(0.0).log(), r"Value\.log: the argument must be positive, got 0"),
    (lambda: Value(-2.0).log(), r"Value\.log: the argument must be positive, got -2"),
    (lambda: Value(1.0) / 0, r"Value\.__pow__: 0 \*\* -1 .*division by zero"),
    (lambda: 10 / Value(0.0), r"Value\.__pow__: 0 \*\* -1 .*division by zero"),
    (lambda: Value(0.0) ** 0.5, r"Value\.__pow__: 0 \*\* 0.5 has no finite derivative"),
    (lambda: Value(-1.0) ** 0.5, r"Value\.__pow__: a negative base"),
    (lambda: Value(2.0) ** float("nan"), r"Value\.__pow__: argument 'k' must be finite"),
    (lambda: Value(1e200) ** 2, r"Value\.__pow__: 1e\+200 \*\* 2 overflows"),
    (lambda: Value(1000.0).exp(), r"Value\.exp: exp\(1000\) overflows"),
    (lambda: Value(1e200) * 1e200, r"Value\.__mul__: the result inf or its local derivative .* is not finite"),
    (lambda: Value(1.5e308) + 1e308, r"Value\.__add__: the result inf"),
    (lambda: Value(5e-324).log(), r"Value\.log: the result -744.44.* or its local derivative \(inf,\) is not finite"),
    (lambda: Value(2**2000), r"Value: argument 'data' is too large for a float"),
    (lambda: Value(1.0) * 2**2000, r"Value\.__mul__: argument 'other' is too large for a float"),
    (lambda: 2**2000 - Value(1.0), r"Value\.__rsub__: argument 'other' is too large for a float"),
    (lambda: Value(1.0) + float("inf"), r"Value\.__add__: argument 'other' must be finite"),
])
def test_bad_values_are_value_errors_naming_the_op(expr, match):
    with pytest.raises(ValueError, match=match):
        expr()


def test_the_constructor_checks_data_and_label():
    with pytest.raises(TypeError, match="Value: argument 'data' must be a real number, got str"):
        Value("1.0")
    with pytest.raises(TypeError, match="Value: argument 'data' must be a real number, got bool"):
        Value(True)
    with pytest.raises(ValueError, match="Value: argument 'data' must be finite"):
        Value(float("nan"))
    with pytest.raises(TypeError, match="Value: argument 'label' must be a string"):
        Value(1.0, label=3)


def test_numpy_scalars_are_accepted_as_numbers():
    v = Value(np.float64(2.0))
    y = np.float32(3.0) * v + np.int64(1)
    y.backward()
    assert (type(y.data), y.data, v.grad) == (float, 7.0, 3.0)


def test_scalar_imports_nothing_of_bplib():
    source = pathlib.Path(__file__).resolve().parents[1].joinpath("bplib", "scalar.py").read_text()
    imported = [n.module if isinstance(n, ast.ImportFrom) else a.name
                for n in ast.walk(ast.parse(source)) if isinstance(n, (ast.Import, ast.ImportFrom))
                for a in getattr(n, "names", [])]
    assert not [m for m in imported if m and m.startswith("bplib")]


def test_a_fraction_is_a_real_number():
    import fractions
    assert Value(fractions.Fraction(1, 4)).data == 0.25


def test_numpy_arrays_do_not_swallow_values():
    # numpy used to build an object array of Values (array * Value); now Value's reflected
    # operation sees the array and refuses it by name, while numpy scalars still work.
    with pytest.raises(TypeError, match="^Value.__rmul__: argument 'other' must be a Value or a real number, got ndarray"):
        np.ones(2) * Value(2.0)
    with pytest.raises(TypeError, match="^Value.__radd__: argument 'other' must be a Value or a real number, got ndarray"):
        np.ones(2) + Value(2.0)
    out = np.float64(3.0) * Value(2.0)
    assert isinstance(out, Value) and out.data == 6.0
    out = np.float32(1.0) / Value(4.0)
    assert isinstance(out, Value) and out.data == 0.25


def test_local_derivatives_are_finite_so_a_gradient_through_small_values_survives():
    # every value and local derivative is finite; a gradient through them is exact here
    x = Value(1e-200)
    y = x * 1e200 * 1e200 * 1e-300  # 1e-100
    z = y * y * 1e250  # 1e50; dz/dx = 2 y 1e250 dy/dx = 2e150 1e100
    z.backward()
    assert x.grad == pytest.approx(2e250, rel=1e-12)
