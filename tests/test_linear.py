"""Tests of bplib.linear: y = x W + b and its backward pass."""

import numpy as np
import pytest
from hypothesis import given
from strategies import as_matrix, hostile_arrays, linear_sizes, seeds

from bplib.gradcheck import check_backward, numerical_gradient_array
from bplib.linear import linear_backward, linear_forward


def _operands(sizes, seed):
    n, d, m = sizes
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)), rng.standard_normal((d, m)), rng.standard_normal(m), rng


def test_forward_by_hand():
    # y_11 = 1*1 + 2*3 + 10, y_12 = 1*2 + 2*4 + 20, worked out on paper.
    x = np.array([[1.0, 2.0]])
    W = np.array([[1.0, 2.0], [3.0, 4.0]])
    y, _ = linear_forward(x, W, np.array([10.0, 20.0]))
    np.testing.assert_array_equal(y, [[17.0, 30.0]])


def test_backward_by_hand():
    # dx_nd = sum_m dy_nm W_dm, dW_dm = sum_n x_nd dy_nm, db_m = sum_n dy_nm, on paper.
    x = np.array([[1.0, 2.0], [3.0, 4.0]])
    W = np.array([[1.0, 0.0, 2.0], [0.0, 1.0, 3.0]])
    dy = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]])
    dx, dW, db = linear_backward(dy, linear_forward(x, W, np.zeros(3))[1])
    np.testing.assert_array_equal(dx, [[1.0, 0.0], [2.0, 4.0]])
    np.testing.assert_array_equal(dW, [[1.0, 3.0, 3.0], [2.0, 4.0, 4.0]])
    np.testing.assert_array_equal(db, [1.0, 1.0, 1.0])


@given(linear_sizes, seeds())
def test_gradcheck(sizes, seed):
    x, W, b, rng = _operands(sizes, seed)
    errors = check_backward(linear_forward, linear_backward, (x, W, b), names=("x", "W", "b"), rng=rng)
    assert set(errors) == {"x", "W", "b"}


@given(linear_sizes, seeds())
def test_shapes(sizes, seed):
    x, W, b, rng = _operands(sizes, seed)
    y, cache = linear_forward(x, W, b)
    assert y.shape == (sizes[0], sizes[2])
    dx, dW, db = linear_backward(rng.standard_normal(y.shape), cache)
    assert (dx.shape, dW.shape, db.shape) == (x.shape, W.shape, b.shape)


@given(linear_sizes, seeds())
def test_batch_is_sum_of_single_examples(sizes, seed):
    x, W, b, rng = _operands(sizes, seed)
    y, cache = linear_forward(x, W, b)
    dy = rng.standard_normal(y.shape)
    dx, dW, db = linear_backward(dy, cache)
    dW_sum, db_sum = np.zeros_like(W), np.zeros_like(b)
    for n in range(x.shape[0]):
        y_n, cache_n = linear_forward(x[n:n + 1], W, b)
        np.testing.assert_allclose(y_n, y[n:n + 1], rtol=1e-12, atol=1e-12)
        dx_n, dW_n, db_n = linear_backward(dy[n:n + 1], cache_n)
        np.testing.assert_allclose(dx_n, dx[n:n + 1], rtol=1e-12, atol=1e-12)
        dW_sum += dW_n
        db_sum += db_n
    np.testing.assert_allclose(dW, dW_sum, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(db, db_sum, rtol=1e-10, atol=1e-12)


@given(linear_sizes, seeds())
def test_backward_is_linear_in_dy(sizes, seed):
    x, W, b, rng = _operands(sizes, seed)
    y, cache = linear_forward(x, W, b)
    dy1, dy2 = rng.standard_normal(y.shape), rng.standard_normal(y.shape)
    alpha, beta = 2.5, -0.75
    combined = linear_backward(alpha * dy1 + beta * dy2, cache)
    for g, g1, g2 in zip(combined, linear_backward(dy1, cache), linear_backward(dy2, cache), strict=True):
        np.testing.assert_allclose(g, alpha * g1 + beta * g2, rtol=1e-10, atol=1e-12)


def test_no_mutation():
    x, W, b, rng = _operands((3, 4, 2), 1)
    copies = [a.copy() for a in (x, W, b)]
    y, cache = linear_forward(x, W, b)
    dy = rng.standard_normal(y.shape)
    dy_copy = dy.copy()
    linear_backward(dy, cache)
    for a, c in zip((x, W, b, dy, cache[0], cache[1]), copies + [dy_copy] + copies[:2], strict=True):
        np.testing.assert_array_equal(a, c)


def test_matches_numerical_vjp_for_x():
    # An independent route: the numerical vector-Jacobian product of the forward.
    x, W, b, rng = _operands((2, 3, 4), 2)
    dy = rng.standard_normal((2, 4))
    dx, _, _ = linear_backward(dy, linear_forward(x, W, b)[1])
    numeric = numerical_gradient_array(lambda v: linear_forward(v, W, b)[0], x, dy)
    np.testing.assert_allclose(dx, numeric, rtol=1e-7, atol=1e-9)


def test_float32_keeps_dtype():
    x, W, b, _ = _operands((2, 3, 4), 3)
    y, cache = linear_forward(x.astype(np.float32), W.astype(np.float32), b.astype(np.float32))
    assert y.dtype == np.float32
    assert all(g.dtype == np.float32 for g in linear_backward(np.ones((2, 4), np.float32), cache))


def test_extreme_inputs_stay_finite():
    x = np.full((2, 3), 1e100)
    W = np.full((3, 2), 1e100)
    y, cache = linear_forward(x, W, np.zeros(2))
    dx, dW, db = linear_backward(np.ones((2, 2)), cache)
    assert np.all(np.isfinite(y)) and np.all(np.isfinite(dx)) and np.all(np.isfinite(dW)) and np.all(np.isfinite(db))


def test_shape_error_names_both_shapes():
    with pytest.raises(ValueError, match=r"'x' has shape \(5, 3\) but 'W' has shape \(4, 2\)"):
        linear_forward(np.zeros((5, 3)), np.zeros((4, 2)), np.zeros(2))


def test_bias_error_names_both_shapes():
    with pytest.raises(ValueError, match=r"'b' has shape \(3,\) but 'W' has shape \(4, 2\)"):
        linear_forward(np.zeros((5, 4)), np.zeros((4, 2)), np.zeros(3))


@pytest.mark.parametrize(
    ("x", "W", "b", "name"),
    [
        (np.zeros(3), np.zeros((3, 2)), np.zeros(2), "x"),
        (np.zeros((1, 3)), np.zeros(3), np.zeros(2), "W"),
        (np.zeros((1, 3)), np.zeros((3, 2)), np.zeros((1, 2)), "b"),
    ],
)
def test_wrong_ndim(x, W, b, name):
    with pytest.raises(ValueError, match=f"linear_forward: argument '{name}' must have"):
        linear_forward(x, W, b)


def test_wrong_type_and_dtype():
    with pytest.raises(TypeError, match="argument 'x'"):
        linear_forward("x", np.zeros((3, 2)), np.zeros(2))
    with pytest.raises(TypeError, match="argument 'W'"):
        linear_forward(np.zeros((1, 3)), np.zeros((3, 2), dtype=bool), np.zeros(2))
    with pytest.raises(ValueError, match="argument 'b' contains NaN"):
        linear_forward(np.zeros((1, 3)), np.zeros((3, 2)), np.array([0.0, np.nan]))


def test_backward_bad_dy():
    _, cache = linear_forward(np.zeros((2, 3)), np.zeros((3, 4)), np.zeros(4))
    with pytest.raises(ValueError, match=r"linear_backward: argument 'dy' must have shape \(2, 4\), got \(2, 3\)"):
        linear_backward(np.zeros((2, 3)), cache)
    with pytest.raises(ValueError, match="linear_backward: argument 'dy' must have 2 dimensions"):
        linear_backward(np.zeros(4), cache)


def test_backward_bad_cache():
    with pytest.raises(TypeError, match="linear_backward: argument 'cache'"):
        linear_backward(np.zeros((2, 4)), (np.zeros((2, 3)),))


# --- hostile input (issue 13) ---

SHAPES = {"x": (2, 3), "W": (3, 4), "b": (4,)}


@pytest.mark.parametrize("arg", ["x", "W", "b"])
@pytest.mark.parametrize("case", list(hostile_arrays()))
def test_forward_refuses_hostile_input_by_name(arg, case):
    args = {k: np.ones(shape) for k, shape in SHAPES.items()}
    value, error = hostile_arrays(SHAPES[arg])[case]
    args[arg] = value
    with pytest.raises(error, match=f"^linear_forward: argument '{arg}'"):
        linear_forward(**args)


@pytest.mark.parametrize("case", list(hostile_arrays()))
def test_backward_refuses_a_hostile_dy_by_name(case):
    _, cache = linear_forward(np.ones((2, 3)), np.ones((3, 4)), np.ones(4))
    value, error = hostile_arrays((2, 4))[case]
    with pytest.raises(error, match="^linear_backward: argument 'dy'"):
        linear_backward(value, cache)


def test_matrices_are_read_as_plain_arrays():
    x, W, b, _ = _operands((3, 3, 3), 5)
    y, cache = linear_forward(as_matrix(x), as_matrix(W), b)
    assert type(y) is np.ndarray
    np.testing.assert_array_equal(y, linear_forward(x, W, b)[0])
    grads = linear_backward(as_matrix(np.ones((3, 3))), cache)
    assert all(type(g) is np.ndarray for g in grads)
    np.testing.assert_array_equal(grads[1], x.T @ np.ones((3, 3)))


def test_an_overflowing_result_is_refused_not_returned_as_inf():
    big = np.finfo(np.float64).max / 2
    with pytest.raises(ValueError, match=r"^linear_forward: y = x W \+ b overflows float64"):
        linear_forward(np.full((1, 3), big), np.ones((3, 1)), np.zeros(1))  # the true y is 1.5 max
    _, cache = linear_forward(np.ones((2, 3)), np.ones((3, 1)), np.zeros(1))
    with pytest.raises(ValueError, match="^linear_backward: a gradient overflows float64"):
        linear_backward(np.full((2, 1), 0.75 * np.finfo(np.float64).max), cache)  # db = 1.5 max
    with pytest.raises(ValueError, match="^linear_forward: y = x W \\+ b overflows float32"):
        linear_forward(np.full((1, 2), 1e20, np.float32), np.full((2, 1), 1e20, np.float32), np.zeros(1, np.float32))


def test_an_empty_batch_gives_an_empty_output_and_zero_parameter_gradients():
    y, cache = linear_forward(np.zeros((0, 3)), np.ones((3, 2)), np.ones(2))
    assert y.shape == (0, 2)
    dx, dW, db = linear_backward(np.zeros((0, 2)), cache)
    assert dx.shape == (0, 3)
    np.testing.assert_array_equal(dW, np.zeros((3, 2)))
    np.testing.assert_array_equal(db, np.zeros(2))
