"""Tests of bplib.conv: hand examples, gradient checks, naive = fast, im2col, pooling, bad input."""

import numpy as np
import pytest
from hypothesis import example, given
from strategies import conv_geometries, pool_geometries, seeds

from bplib import conv
from bplib.gradcheck import check_backward

CONV = {
    "naive": (conv.conv2d_naive_forward, conv.conv2d_naive_backward),
    "fast": (conv.conv2d_forward, conv.conv2d_backward),
}
POOL = {"max": (conv.maxpool_forward, conv.maxpool_backward), "avg": (conv.avgpool_forward, conv.avgpool_backward)}
SUB = (conv.subsample_forward, conv.subsample_backward)

# H = 6, kh = 3, stride 2, pad 0: windows start at rows 0 and 2, so row 5 (and column 5) is never read.
UNTILED = dict(N=1, C=2, F=2, H=6, W=6, kh=3, kw=3, stride=2, pad=0)


def conv_problem(g, seed):
    """x, W, b, the keyword arguments and the rng, for a geometry dict from conv_geometries."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((g["N"], g["C"], g["H"], g["W"]))
    W = rng.standard_normal((g["F"], g["C"], g["kh"], g["kw"]))
    return x, W, rng.standard_normal(g["F"]), dict(stride=g["stride"], pad=g["pad"]), rng


def distinct_values(shape, rng):
    """Entries 0.1 apart in random order: no two are tied, so no step of h = 1e-6 moves an argmax."""
    n = int(np.prod(shape))
    return (0.1 * rng.permutation(n) - 0.05 * n).reshape(shape)


def pool_reference(x, size, stride, reduce):
    """Pooling by a loop over output entries and plain slicing (no window views), as a reference."""
    N, C, H, W = x.shape
    y = np.empty((N, C, (H - size) // stride + 1, (W - size) // stride + 1))
    for n, c, i, j in np.ndindex(y.shape):
        y[n, c, i, j] = reduce(x[n, c, i * stride:i * stride + size, j * stride:j * stride + size])
    return y


def image(values):
    """A (1, 1, h, w) array from nested lists: one example with one channel."""
    return np.array(values, dtype=np.float64)[None, None]


# ---------------------------------------------------------------- hand examples


@pytest.mark.parametrize("version", ["naive", "fast"])
def test_hand_example_3x3_input_2x2_kernel(version):
    forward, backward = CONV[version]
    x = image([[1, 2, 3], [4, 5, 6], [7, 8, 9]])
    W = image([[1, 2], [0, -1]])
    # By hand, y[i, j] = x[i, j] + 2 x[i, j + 1] - x[i + 1, j + 1] + b with b = 1:
    #   y00 = 1 + 4 - 5 + 1 = 1,  y01 = 2 + 6 - 6 + 1 = 3,
    #   y10 = 4 + 10 - 8 + 1 = 7, y11 = 5 + 12 - 9 + 1 = 9.
    y, cache = forward(x, W, np.array([1.0]))
    np.testing.assert_array_equal(y, image([[1, 3], [7, 9]]))
    # With dy = [[1, 2], [3, 4]]:
    #   dW[p, q] = sum_ij dy[i, j] x[i + p, j + q]:
    #     dW00 = 1*1 + 2*2 + 3*4 + 4*5 = 37, dW01 = 1*2 + 2*3 + 3*5 + 4*6 = 47,
    #     dW10 = 1*4 + 2*5 + 3*7 + 4*8 = 67, dW11 = 1*5 + 2*6 + 3*8 + 4*9 = 77;
    #   db = 1 + 2 + 3 + 4 = 10;
    #   dx = dy placed at (i, j) times W00 = 1      [[1, 2, 0], [3, 4, 0], [0, 0, 0]]
    #      + dy placed at (i, j + 1) times W01 = 2  [[0, 2, 4], [0, 6, 8], [0, 0, 0]]
    #      + dy placed at (i + 1, j + 1) times -1   [[0, 0, 0], [0, -1, -2], [0, -3, -4]]
    #      = [[1, 4, 4], [3, 9, 6], [0, -3, -4]].
    dx, dW, db = backward(image([[1, 2], [3, 4]]), cache)
    np.testing.assert_array_equal(dx, image([[1, 4, 4], [3, 9, 6], [0, -3, -4]]))
    np.testing.assert_array_equal(dW, image([[37, 47], [67, 77]]))
    np.testing.assert_array_equal(db, [10.0])


@pytest.mark.parametrize("version", ["naive", "fast"])
def test_hand_example_with_padding_and_stride(version):
    forward, backward = CONV[version]
    x = image([[1, 2, 3], [4, 5, 6], [7, 8, 9]])
    # pad 1 gives the 5 x 5 xp below; a 2 x 2 kernel of ones at stride 2 reads the
    # windows starting at rows and columns 0 and 2; Ho = (3 + 2 - 2) // 2 + 1 = 2.
    #   xp = 0 0 0 0 0 / 0 1 2 3 0 / 0 4 5 6 0 / 0 7 8 9 0 / 0 0 0 0 0
    #   y00 = 0+0+0+1 = 1, y01 = 0+0+2+3 = 5, y10 = 0+4+0+7 = 11, y11 = 5+6+8+9 = 28.
    y, cache = forward(x, np.ones((1, 1, 2, 2)), np.zeros(1), stride=2, pad=1)
    np.testing.assert_array_equal(y, image([[1, 5], [11, 28]]))
    # dy = [[1, 2], [3, 4]]. The windows do not overlap and cover x, so each pixel
    # gets the dy of its one window: dx = [[1, 2, 2], [3, 4, 4], [3, 4, 4]].
    # dW[p, q] = sum_ij dy[i, j] xp[2i + p, 2j + q]:
    #   dW00 = 1*0 + 2*0 + 3*0 + 4*5 = 20,  dW01 = 1*0 + 2*0 + 3*4 + 4*6 = 36,
    #   dW10 = 1*0 + 2*2 + 3*0 + 4*8 = 36,  dW11 = 1*1 + 2*3 + 3*7 + 4*9 = 64.
    dx, dW, db = backward(image([[1, 2], [3, 4]]), cache)
    np.testing.assert_array_equal(dx, image([[1, 2, 2], [3, 4, 4], [3, 4, 4]]))
    np.testing.assert_array_equal(dW, image([[20, 36], [36, 64]]))
    np.testing.assert_array_equal(db, [10.0])


def test_im2col_hand_example():
    # Each row is one 2 x 2 window of 1..9, read row by row; windows in row-major order.
    cols = conv.im2col(image([[1, 2, 3], [4, 5, 6], [7, 8, 9]]), 2, 2)
    np.testing.assert_array_equal(cols, [[1, 2, 4, 5], [2, 3, 5, 6], [4, 5, 7, 8], [5, 6, 8, 9]])


def test_col2im_of_ones_counts_the_windows_over_each_pixel():
    # 2 x 2 windows at stride 1 on a 3 x 3 image: corners lie in 1 window, edges in 2, the centre in 4.
    dx = conv.col2im(np.ones((4, 4)), (1, 1, 3, 3), 2, 2)
    np.testing.assert_array_equal(dx, image([[1, 2, 1], [2, 4, 2], [1, 2, 1]]))


def test_maxpool_hand_example_with_overlapping_windows():
    x = image([[1, 9, 2], [3, 4, 5], [6, 0, 7]])
    # size 2, stride 1: the windows' maxima are 9 (at (0, 1)), 9 (at (0, 1) again), 6 (at (2, 0)), 7 (at (2, 2)).
    y, cache = conv.maxpool_forward(x, size=2, stride=1)
    np.testing.assert_array_equal(y, image([[9, 9], [6, 7]]))
    # dout = [[1, 2], [3, 4]]: the 9 wins two windows and collects 1 + 2 = 3.
    dx = conv.maxpool_backward(image([[1, 2], [3, 4]]), cache)
    np.testing.assert_array_equal(dx, image([[0, 3, 0], [0, 0, 0], [3, 0, 4]]))


def test_avgpool_hand_example_with_overlapping_windows():
    x = image([[1, 9, 2], [3, 4, 5], [6, 0, 7]])
    # Window sums 17, 20, 13, 16, each over 4.
    y, cache = conv.avgpool_forward(x, size=2, stride=1)
    np.testing.assert_array_equal(y, image([[4.25, 5.0], [3.25, 4.0]]))
    # Each pixel gets a quarter of the dout of every window that holds it, dout = [[1, 2], [3, 4]]:
    # row 0: 1, 1 + 2, 2; row 1: 1 + 3, 1 + 2 + 3 + 4, 2 + 4; row 2: 3, 3 + 4, 4; all over 4.
    dx = conv.avgpool_backward(image([[1, 2], [3, 4]]), cache)
    np.testing.assert_array_equal(dx, image([[1, 3, 2], [4, 10, 6], [3, 7, 4]]) / 4)


def test_maxpool_tie_goes_to_the_first_maximum_in_row_major_order():
    x = image([[2, 2, 0, 5], [2, 2, 5, 1]])  # window 1 ties everywhere; window 2 ties at (0, 3) and (1, 2)
    y, cache = conv.maxpool_forward(x)
    np.testing.assert_array_equal(y, image([[2, 5]]))
    dx = conv.maxpool_backward(image([[1.0, 1.0]]), cache)
    np.testing.assert_array_equal(dx, image([[1, 0, 0, 1], [0, 0, 0, 0]]))


# ---------------------------------------------------------------- gradient checks and properties


@pytest.mark.parametrize("version", ["naive", "fast"])
@given(g=conv_geometries(), seed=seeds())
@example(g=UNTILED, seed=0)
def test_conv_passes_gradient_check(version, g, seed):
    x, W, b, kwargs, rng = conv_problem(g, seed)
    errors = check_backward(*CONV[version], (x, W, b), kwargs=kwargs, names=("x", "W", "b"), rng=rng)
    assert set(errors) == {"x", "W", "b"}


@given(g=conv_geometries(), seed=seeds())
@example(g=UNTILED, seed=0)
def test_naive_equals_fast_and_shapes_follow_the_formula(g, seed):
    x, W, b, kwargs, rng = conv_problem(g, seed)
    y_naive, cache_naive = conv.conv2d_naive_forward(x, W, b, **kwargs)
    y_fast, cache_fast = conv.conv2d_forward(x, W, b, **kwargs)
    Ho = (g["H"] + 2 * g["pad"] - g["kh"]) // g["stride"] + 1
    Wo = (g["W"] + 2 * g["pad"] - g["kw"]) // g["stride"] + 1
    assert y_fast.shape == y_naive.shape == (g["N"], g["F"], Ho, Wo)
    np.testing.assert_allclose(y_fast, y_naive, rtol=1e-10, atol=1e-10)
    dy = rng.standard_normal(y_naive.shape)
    for name, naive, fast in zip("x W b".split(), conv.conv2d_naive_backward(dy, cache_naive), conv.conv2d_backward(dy, cache_fast)):
        assert fast.shape == naive.shape, name
        np.testing.assert_allclose(fast, naive, rtol=1e-10, atol=1e-10, err_msg=name)


@pytest.mark.parametrize("version", ["naive", "fast"])
def test_a_stride_that_does_not_tile_leaves_the_last_row_and_column_unused(version):
    forward, backward = CONV[version]
    x, W, b, kwargs, rng = conv_problem(UNTILED, 1)
    y, cache = forward(x, W, b, **kwargs)
    assert y.shape == (1, 2, 2, 2)  # Ho = (6 - 3) // 2 + 1 = 2
    x2 = x.copy()
    x2[:, :, 5, :] += 100.0
    x2[:, :, :, 5] -= 100.0
    np.testing.assert_array_equal(forward(x2, W, b, **kwargs)[0], y)
    dx = backward(rng.standard_normal(y.shape), cache)[0]
    assert np.all(dx[:, :, 5, :] == 0) and np.all(dx[:, :, :, 5] == 0)
    assert np.all(dx[:, :, :5, :5] != 0)


@given(g=conv_geometries(), seed=seeds())
def test_conv_is_the_matrix_product_of_im2col_and_the_flattened_kernel(g, seed):
    x, W, b, kwargs, _ = conv_problem(g, seed)
    y, _ = conv.conv2d_naive_forward(x, W, b, **kwargs)
    N, F, Ho, Wo = y.shape
    rows = conv.im2col(x, g["kh"], g["kw"], **kwargs) @ W.reshape(F, -1).T + b  # (N Ho Wo, F)
    np.testing.assert_allclose(rows.reshape(N, Ho, Wo, F).transpose(0, 3, 1, 2), y, rtol=1e-10, atol=1e-10)


@given(g=conv_geometries(), seed=seeds())
def test_im2col_and_col2im_are_adjoint(g, seed):
    x, _, _, kwargs, rng = conv_problem(g, seed)
    cols = conv.im2col(x, g["kh"], g["kw"], **kwargs)
    c = rng.standard_normal(cols.shape)
    # <im2col(x), c> = <x, col2im(c)>: col2im is the transpose of the linear map im2col.
    lhs = np.sum(cols * c)
    rhs = np.sum(x * conv.col2im(c, x.shape, g["kh"], g["kw"], **kwargs))
    assert lhs == pytest.approx(rhs, rel=1e-10, abs=1e-10)


@given(g=conv_geometries(), seed=seeds())
def test_batch_is_the_stack_of_its_examples(g, seed):
    x, W, b, kwargs, rng = conv_problem(g, seed)
    y, cache = conv.conv2d_forward(x, W, b, **kwargs)
    dy = rng.standard_normal(y.shape)
    dx, dW, db = conv.conv2d_backward(dy, cache)
    dW_sum, db_sum = np.zeros_like(W), np.zeros_like(b)
    for n in range(g["N"]):
        y_n, cache_n = conv.conv2d_forward(x[n:n + 1], W, b, **kwargs)
        np.testing.assert_allclose(y_n, y[n:n + 1], rtol=1e-12, atol=1e-12)
        dx_n, dW_n, db_n = conv.conv2d_backward(dy[n:n + 1], cache_n)
        np.testing.assert_allclose(dx_n, dx[n:n + 1], rtol=1e-12, atol=1e-12)
        dW_sum, db_sum = dW_sum + dW_n, db_sum + db_n
    # The kernel is shared by the examples: its total gradient is the sum of the parts.
    np.testing.assert_allclose(dW, dW_sum, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(db, db_sum, rtol=1e-10, atol=1e-10)


@given(g=pool_geometries(), seed=seeds())
def test_maxpool_passes_gradient_check_on_inputs_without_ties(g, seed):
    # The max is not differentiable at a tie (its gradient jumps from one entry to
    # the other), so a central difference across a tie would disagree with any rule.
    rng = np.random.default_rng(seed)
    x = distinct_values((g["N"], g["C"], g["H"], g["W"]), rng)
    kwargs = dict(size=g["size"], stride=g["stride"])
    check_backward(conv.maxpool_forward, conv.maxpool_backward, (x,), kwargs=kwargs, names=("x",), rng=rng)
    np.testing.assert_array_equal(conv.maxpool_forward(x, **kwargs)[0], pool_reference(x, g["size"], g["stride"], np.max))


@given(g=pool_geometries(), seed=seeds())
def test_avgpool_passes_gradient_check(g, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((g["N"], g["C"], g["H"], g["W"]))
    kwargs = dict(size=g["size"], stride=g["stride"])
    check_backward(conv.avgpool_forward, conv.avgpool_backward, (x,), kwargs=kwargs, names=("x",), rng=rng)
    np.testing.assert_allclose(conv.avgpool_forward(x, **kwargs)[0], pool_reference(x, g["size"], g["stride"], np.mean), rtol=1e-12)


@pytest.mark.parametrize("name", ["max", "avg"])
def test_overlapping_pool_windows_accumulate_in_the_backward(name):
    forward, backward = POOL[name]
    x = distinct_values((2, 3, 7, 7), np.random.default_rng(2))
    x[:, :, 2, 2] = 100.0  # the largest entry, in the 4 windows that share row 2 and column 2
    y, cache = forward(x, size=3, stride=2)  # windows start at rows and columns 0, 2, 4
    dout = np.ones(y.shape)
    dx = backward(dout, cache)
    # Every window hands out exactly its dout in total, overlapping or not ...
    np.testing.assert_allclose(dx.sum(axis=(2, 3)), dout.sum(axis=(2, 3)), rtol=1e-12)
    # ... and pixel (2, 2) collects from all 4 of its windows: all of each for max, 1/9 of each for avg.
    np.testing.assert_allclose(dx[:, :, 2, 2], 4.0 if name == "max" else 4 / 9, rtol=1e-12)
    check_backward(forward, backward, (x,), kwargs=dict(size=3, stride=2), names=("x",))


@pytest.mark.parametrize("name", ["max", "avg"])
def test_pooling_with_size_one_is_the_identity_and_returns_a_new_array(name):
    forward, backward = POOL[name]
    x = np.random.default_rng(5).standard_normal((2, 3, 4, 5))
    y, cache = forward(x, size=1, stride=1)
    np.testing.assert_array_equal(y, x)
    assert not np.shares_memory(y, x)
    np.testing.assert_array_equal(backward(2 * x, cache), 2 * x)


def _as_tuple(grads):
    return grads if isinstance(grads, tuple) else (grads,)


def _pair_inputs(name, rng):
    """Arguments and keyword arguments of one of the five pairs, at a small size."""
    if name in CONV:
        x, W, b, kwargs, _ = conv_problem(dict(N=2, C=2, F=3, H=5, W=4, kh=2, kw=3, stride=2, pad=1), rng.integers(1 << 30))
        return CONV[name], (x, W, b), kwargs
    if name == "sub":
        return SUB, (distinct_values((2, 2, 5, 6), rng), rng.standard_normal(2), rng.standard_normal(2)), dict(size=3, stride=1)
    return POOL[name], (distinct_values((2, 2, 5, 6), rng),), dict(size=3, stride=1)


@pytest.mark.parametrize("name", ["naive", "fast", "max", "avg", "sub"])
@given(seed=seeds())
def test_backward_is_linear_in_dout_and_mutates_nothing(name, seed):
    rng = np.random.default_rng(seed)
    (forward, backward), args, kwargs = _pair_inputs(name, rng)
    args_before = [a.copy() for a in args]
    out, cache = forward(*args, **kwargs)
    cache_before = [np.copy(c) for c in cache]  # a shape tuple becomes an array; the comparison still holds
    d1, d2 = rng.standard_normal(out.shape), rng.standard_normal(out.shape)
    d1_before = d1.copy()
    g1, g2, g12 = (_as_tuple(backward(d, cache)) for d in (d1, d2, 2 * d1 - 3 * d2))
    for a, b, ab in zip(g1, g2, g12):
        np.testing.assert_allclose(ab, 2 * a - 3 * b, rtol=1e-10, atol=1e-10)
    np.testing.assert_array_equal(d1, d1_before)
    for a, a0 in zip(list(args) + list(cache), args_before + cache_before):
        np.testing.assert_array_equal(a, a0)


@pytest.mark.parametrize("name", ["naive", "fast", "max", "avg", "sub"])
def test_float32_stays_float32(name):
    (forward, backward), args, kwargs = _pair_inputs(name, np.random.default_rng(3))
    out, cache = forward(*(a.astype(np.float32) for a in args), **kwargs)
    grads = backward(np.ones(out.shape, np.float32), cache)
    assert out.dtype == np.float32
    assert all(g.dtype == np.float32 for g in _as_tuple(grads))


@pytest.mark.parametrize("name", ["naive", "fast", "max", "avg", "sub"])
def test_extreme_inputs_stay_finite(name):
    (forward, backward), args, kwargs = _pair_inputs(name, np.random.default_rng(4))
    big = tuple(1e100 * a for a in args)  # products of two reach 1e200, still below the float64 maximum
    out, cache = forward(*big, **kwargs)
    grads = backward(1e100 * np.ones(out.shape), cache)
    assert np.all(np.isfinite(out))
    assert all(np.all(np.isfinite(g)) for g in _as_tuple(grads))


# ---------------------------------------------------------------- bad input


def _conv_call(forward, x=(1, 3, 5, 5), W=(2, 3, 3, 3), b=(2,), stride=1, pad=0):
    """Call forward with arrays of the given shapes (or the given objects, when not tuples)."""
    arr = lambda v: np.ones(v) if isinstance(v, tuple) else v  # noqa: E731
    return forward(arr(x), arr(W), arr(b), stride=stride, pad=pad)


CONV_BAD = [
    (dict(W=(2, 4, 3, 3)), ValueError, r"'x' has C = 3 channels \(shape \(1, 3, 5, 5\)\) but 'W' expects C = 4 \(shape \(2, 4, 3, 3\)"),
    (dict(W=(2, 3, 6, 3)), ValueError, r"6 x 3 window given by 'W' is larger than the padded input 'x', 5 x 5"),
    (dict(W=(2, 3, 8, 3), pad=1), ValueError, r"8 x 3 window given by 'W' is larger than the padded input 'x', 7 x 7 .*pad 1\)"),
    (dict(W=(2, 3, 0, 3)), ValueError, r"'W' must be at least 1 x 1, got 0 x 3"),
    (dict(stride=0), ValueError, r"'stride' must be at least 1"),
    (dict(stride=1.5), TypeError, r"'stride' must be an integer"),
    (dict(stride=True), TypeError, r"'stride' must be an integer"),
    (dict(pad=-1), ValueError, r"'pad' must be at least 0"),
    (dict(pad=1.0), TypeError, r"'pad' must be an integer"),
    (dict(b=(3,)), ValueError, r"'b' must have shape \(2,\), got \(3,\)"),
    (dict(b=(2, 1)), ValueError, r"'b' must have 1 dimensions"),
    (dict(x=(3, 5, 5)), ValueError, r"'x' must have 4 dimensions, got shape \(3, 5, 5\)"),
    (dict(W=(2, 3, 3)), ValueError, r"'W' must have 4 dimensions"),
    (dict(x=np.ones((1, 3, 5, 5), complex)), TypeError, r"'x' must have dtype float32 or float64"),
    (dict(W=np.ones((2, 3, 3, 3), bool)), TypeError, r"'W' must have dtype float32 or float64"),
    (dict(b="ab"), TypeError, r"'b' must be a numpy array"),
    (dict(x=np.full((1, 3, 5, 5), np.nan)), ValueError, r"'x' contains NaN"),
]


@pytest.mark.parametrize("version", ["naive", "fast"])
@pytest.mark.parametrize("bad, error, message", CONV_BAD)
def test_conv_forward_rejects_bad_input(version, bad, error, message):
    fn = CONV[version][0].__name__
    with pytest.raises(error, match=fn + ": .*" + message):
        _conv_call(CONV[version][0], **bad)


@pytest.mark.parametrize("version", ["naive", "fast"])
def test_conv_backward_rejects_bad_input(version):
    forward, backward = CONV[version]
    y, cache = _conv_call(forward, pad=1)
    with pytest.raises(ValueError, match=r"'dy' must have shape \(1, 2, 5, 5\), got \(1, 2, 5, 4\)"):
        backward(np.ones((1, 2, 5, 4)), cache)
    with pytest.raises(TypeError, match="'dy' must have dtype"):
        backward(np.ones(y.shape, complex), cache)
    with pytest.raises(TypeError, match="'cache' must be the"):
        backward(np.ones(y.shape), cache[:-1])
    other = CONV["fast" if version == "naive" else "naive"]
    with pytest.raises(TypeError, match="'cache' must be the"):
        backward(np.ones(y.shape), _conv_call(other[0], pad=1)[1])


IM2COL_BAD = [
    (dict(x=np.ones((3, 5, 5))), ValueError, r"'x' must have 4 dimensions"),
    (dict(x=np.ones((1, 1, 3, 3), complex)), TypeError, r"'x' must have dtype"),
    (dict(kh=0), ValueError, r"'kh' must be at least 1"),
    (dict(kw=2.0), TypeError, r"'kw' must be an integer"),
    (dict(stride=0), ValueError, r"'stride' must be at least 1"),
    (dict(pad=-2), ValueError, r"'pad' must be at least 0"),
    (dict(kh=6), ValueError, r"6 x 2 window given by 'kh, kw' is larger than the padded input 'x', 5 x 5"),
]


@pytest.mark.parametrize("bad, error, message", IM2COL_BAD)
def test_im2col_rejects_bad_input(bad, error, message):
    args = dict(x=np.ones((1, 1, 3, 3)), kh=2, kw=2, stride=1, pad=1) | bad
    with pytest.raises(error, match="im2col: .*" + message):
        conv.im2col(**args)


COL2IM_BAD = [
    (dict(cols=np.ones((2, 2, 4))), ValueError, r"'cols' must have 2 dimensions"),
    (dict(cols=np.ones((9, 4))), ValueError, r"'cols' must have shape \(8, 4\), got \(9, 4\)"),
    (dict(x_shape=np.ones(4)), TypeError, r"'x_shape' must be a tuple \(N, C, H, W\)"),
    (dict(x_shape=(2, 1, 3)), TypeError, r"'x_shape' must be a tuple"),
    (dict(x_shape=(2, 1, 3.0, 3)), TypeError, r"'x_shape' must be an integer"),
    (dict(x_shape=(2, -1, 3, 3)), ValueError, r"'x_shape' must be at least 0"),
    (dict(kh=0), ValueError, r"'kh' must be at least 1"),
    (dict(kw=4), ValueError, r"2 x 4 window given by 'kh, kw' is larger than the padded input 'x', 3 x 3"),
    (dict(stride=-1), ValueError, r"'stride' must be at least 1"),
    (dict(pad=0.5), TypeError, r"'pad' must be an integer"),
]


@pytest.mark.parametrize("bad, error, message", COL2IM_BAD)
def test_col2im_rejects_bad_input(bad, error, message):
    args = dict(cols=np.ones((8, 4)), x_shape=(2, 1, 3, 3), kh=2, kw=2, stride=1, pad=0) | bad
    with pytest.raises(error, match="col2im: .*" + message):
        conv.col2im(**args)


POOL_BAD = [
    (dict(x=np.ones((2, 4, 4))), ValueError, r"'x' must have 4 dimensions"),
    (dict(x=np.ones((1, 1, 4, 4), complex)), TypeError, r"'x' must have dtype"),
    (dict(size=0), ValueError, r"'size' must be at least 1"),
    (dict(size=2.0), TypeError, r"'size' must be an integer"),
    (dict(stride=0), ValueError, r"'stride' must be at least 1"),
    (dict(stride=1.5), TypeError, r"'stride' must be an integer"),
    (dict(size=5), ValueError, r"5 x 5 window given by 'size' is larger than the padded input 'x', 4 x 4"),
    (dict(x=np.ones((1, 1, 4, 1))), ValueError, r"2 x 2 window given by 'size' is larger than the padded input 'x', 4 x 1"),
]


@pytest.mark.parametrize("name", ["max", "avg"])
@pytest.mark.parametrize("bad, error, message", POOL_BAD)
def test_pool_forward_rejects_bad_input(name, bad, error, message):
    forward = POOL[name][0]
    args = dict(x=np.ones((1, 1, 4, 4)), size=2, stride=2) | bad
    with pytest.raises(error, match=forward.__name__ + ": .*" + message):
        forward(**args)


@pytest.mark.parametrize("name", ["max", "avg"])
def test_pool_backward_rejects_bad_input(name):
    forward, backward = POOL[name]
    y, cache = forward(np.ones((1, 2, 4, 4)))
    with pytest.raises(ValueError, match=backward.__name__ + r": argument 'dout' must have shape \(1, 2, 2, 2\), got \(1, 2, 2\)"):
        backward(np.ones((1, 2, 2)), cache)
    with pytest.raises(TypeError, match="'dout' must have dtype"):
        backward(np.ones(y.shape, complex), cache)
    with pytest.raises(TypeError, match="'cache' must be the"):
        backward(np.ones(y.shape), list(cache))


# ---------------------------------------------------------------- LeNet's subsampling


def test_subsample_hand_example():
    x = image([[1, 2, 0, 4], [3, 4, 1, 1]])  # two 2 x 2 windows with sums 10 and 6
    z, cache = conv.subsample_forward(x, np.array([0.5]), np.array([-1.0]))
    np.testing.assert_array_equal(z, image([[0.5 * 10 - 1, 0.5 * 6 - 1]]))
    # dz = [[2, -1]]: every entry of window 1 gets alpha * 2 = 1, of window 2 alpha * -1 = -0.5;
    # dalpha = 2 * 10 + (-1) * 6 = 14; db = 2 - 1 = 1.
    dx, dalpha, db = conv.subsample_backward(image([[2.0, -1.0]]), cache)
    np.testing.assert_array_equal(dx, image([[1, 1, -0.5, -0.5], [1, 1, -0.5, -0.5]]))
    np.testing.assert_array_equal(dalpha, [14.0])
    np.testing.assert_array_equal(db, [1.0])


@given(g=pool_geometries(), seed=seeds())
def test_subsample_passes_gradient_check_and_matches_a_loop(g, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((g["N"], g["C"], g["H"], g["W"]))
    alpha, b = rng.standard_normal(g["C"]), rng.standard_normal(g["C"])
    kwargs = dict(size=g["size"], stride=g["stride"])
    errors = check_backward(*SUB, (x, alpha, b), kwargs=kwargs, names=("x", "alpha", "b"), rng=rng)
    assert set(errors) == {"x", "alpha", "b"}
    sums = pool_reference(x, g["size"], g["stride"], np.sum)
    np.testing.assert_allclose(conv.subsample_forward(x, alpha, b, **kwargs)[0],
                               alpha[:, None, None] * sums + b[:, None, None], rtol=1e-12, atol=1e-12)


@given(g=pool_geometries(), seed=seeds())
def test_subsample_with_alpha_one_over_size_squared_is_average_pooling(g, seed):
    x = np.random.default_rng(seed).standard_normal((g["N"], g["C"], g["H"], g["W"]))
    kwargs = dict(size=g["size"], stride=g["stride"])
    alpha, b = np.full(g["C"], 1.0 / g["size"] ** 2), np.zeros(g["C"])
    z, cache = conv.subsample_forward(x, alpha, b, **kwargs)
    y, avg_cache = conv.avgpool_forward(x, **kwargs)
    np.testing.assert_allclose(z, y, rtol=1e-12, atol=1e-15)
    dz = np.random.default_rng(seed + 1).standard_normal(z.shape)
    np.testing.assert_allclose(conv.subsample_backward(dz, cache)[0], conv.avgpool_backward(dz, avg_cache), rtol=1e-12, atol=1e-15)


SUB_BAD = [
    (dict(alpha=np.ones(3)), ValueError, r"'alpha' must have shape \(2,\), got \(3,\)"),
    (dict(b=np.ones((2, 1))), ValueError, r"'b' must have 1 dimensions"),
    (dict(alpha=np.array([1.0, np.nan])), ValueError, r"'alpha' contains NaN"),
    (dict(b="b"), TypeError, r"'b' must be a numpy array"),
    (dict(x=np.ones((2, 4, 4))), ValueError, r"'x' must have 4 dimensions"),
    (dict(size=5), ValueError, r"5 x 5 window given by 'size' is larger than the padded input 'x', 4 x 4"),
    (dict(stride=0), ValueError, r"'stride' must be at least 1"),
]


@pytest.mark.parametrize("bad, error, message", SUB_BAD)
def test_subsample_forward_rejects_bad_input(bad, error, message):
    args = dict(x=np.ones((1, 2, 4, 4)), alpha=np.ones(2), b=np.zeros(2), size=2, stride=2) | bad
    with pytest.raises(error, match="subsample_forward: .*" + message):
        conv.subsample_forward(**args)


def test_subsample_backward_rejects_bad_input():
    z, cache = conv.subsample_forward(np.ones((1, 2, 4, 4)), np.ones(2), np.zeros(2))
    with pytest.raises(ValueError, match=r"subsample_backward: argument 'dz' must have shape \(1, 2, 2, 2\), got \(1, 2, 2\)"):
        conv.subsample_backward(np.ones((1, 2, 2)), cache)
    with pytest.raises(TypeError, match="subsample_backward: argument 'cache' must be the SubsampleCache"):
        conv.subsample_backward(np.ones(z.shape), conv.avgpool_forward(np.ones((1, 2, 4, 4)))[1])


# ---------------------------------------------------------------- hostile sizes and values


@pytest.mark.parametrize("zero", ["N", "C", "F"])
def test_empty_batch_channels_or_filters_work_and_naive_equals_fast(zero):
    g = dict(N=2, C=3, F=4, H=5, W=5, kh=3, kw=2, stride=2, pad=1) | {zero: 0}
    x, W, b, kwargs, rng = conv_problem(g, 3)
    y_n, c_n = conv.conv2d_naive_forward(x, W, b, **kwargs)
    y_f, c_f = conv.conv2d_forward(x, W, b, **kwargs)
    assert y_f.shape == y_n.shape == (g["N"], g["F"], 3, 3)
    np.testing.assert_allclose(y_f, y_n, atol=1e-12)
    if zero == "C":  # no channel to sum over: every output is the bias
        np.testing.assert_array_equal(y_f, np.broadcast_to(b[:, None, None], y_f.shape))
    dy = rng.standard_normal(y_n.shape)
    for name, a, f in zip("x W b".split(), conv.conv2d_naive_backward(dy, c_n), conv.conv2d_backward(dy, c_f)):
        assert f.shape == a.shape, name
        np.testing.assert_allclose(f, a, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("zero", [0, 1])
@pytest.mark.parametrize("name", ["max", "avg", "sub"])
def test_pooling_of_an_empty_batch_or_no_channels(name, zero):
    shape = (2, 3, 4, 4)[:zero] + (0,) + (2, 3, 4, 4)[zero + 1:]
    x = np.ones(shape)
    if name == "sub":
        y, cache = conv.subsample_forward(x, np.ones(shape[1]), np.zeros(shape[1]))
        grads = conv.subsample_backward(np.ones(y.shape), cache)
        assert grads[1].shape == grads[2].shape == (shape[1],)
        dx = grads[0]
    else:
        forward, backward = POOL[name]
        y, cache = forward(x)
        dx = backward(np.ones(y.shape), cache)
    assert y.shape == shape[:2] + (2, 2) and dx.shape == shape


def test_fast_conv_keeps_the_dtype_of_the_naive_pair_for_mixed_inputs():
    x, W, b, kwargs, _ = conv_problem(dict(N=1, C=2, F=2, H=4, W=4, kh=3, kw=3, stride=1, pad=1), 0)
    args = (x.astype(np.float32), W.astype(np.float32), b)  # b float64
    assert conv.conv2d_forward(*args, **kwargs)[0].dtype == conv.conv2d_naive_forward(*args, **kwargs)[0].dtype == np.float64


@pytest.mark.parametrize("dtype, big", [(np.float32, 3e38), (np.float64, 1.5e308)])
def test_mean_of_values_near_the_float_maximum_is_finite_and_right(dtype, big):
    x = np.full((1, 2, 4, 4), big, dtype)
    x[0, 1] = -big
    y, cache = conv.avgpool_forward(x)
    assert y.dtype == dtype
    np.testing.assert_array_equal(y[0, 0], np.full((2, 2), big, dtype))
    np.testing.assert_array_equal(y[0, 1], np.full((2, 2), -big, dtype))
    z, _ = conv.subsample_forward(x, np.full(2, 0.25, dtype), np.zeros(2, dtype))
    np.testing.assert_allclose(z, y, rtol=1e-6)
    assert np.all(np.isfinite(conv.avgpool_backward(np.ones(y.shape, dtype), cache)))


def test_mean_of_tiny_values_keeps_its_digits():
    tiny = np.float32(1e-45)  # the smallest positive float32, a subnormal number
    y, _ = conv.avgpool_forward(np.full((1, 1, 2, 2), tiny))
    assert y[0, 0, 0, 0] == tiny  # dividing each entry by 4 first would round it to 0


def test_maxpool_keeps_its_argmax_index_small():
    _, cache = conv.maxpool_forward(np.random.default_rng(0).standard_normal((1, 1, 6, 6)), size=3, stride=3)
    assert cache.idx.dtype == np.uint8 and cache.idx.max() < 9


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")  # np.matrix itself warns
def test_col2im_accepts_a_matrix_as_a_plain_array():
    cols = np.random.default_rng(1).standard_normal((4, 4))
    np.testing.assert_array_equal(conv.col2im(np.asmatrix(cols), (1, 1, 3, 3), 2, 2), conv.col2im(cols, (1, 1, 3, 3), 2, 2))
