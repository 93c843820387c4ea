"""Hypothesis strategies shared by every test file (one place, as CONTRIBUTING.md asks)."""

import warnings

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

# Shapes of one to three axes, each of size one to five.
small_shapes = hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=5)

# Batch shapes (N, D) with a leading batch axis.
batch_shapes = st.tuples(st.integers(1, 6), st.integers(1, 5))

moderate_floats = st.floats(-5.0, 5.0, allow_nan=False, allow_infinity=False)


def float_arrays(shape, elements=moderate_floats):
    """float64 arrays of a given shape (or shape strategy) with moderate entries."""
    return hnp.arrays(np.float64, shape, elements=elements)


def away_from_zero(shape, margin=1e-3):
    """float64 arrays with no entry within ``margin`` of 0, for functions with a kink there."""
    return hnp.arrays(np.float64, shape, elements=moderate_floats.filter(lambda v: abs(v) > margin))


def seeds():
    """Seeds for np.random.default_rng."""
    return st.integers(0, 2**32 - 1)


# Linear layer sizes (N, D, M): batch, input features, output features (chapter 4).
linear_sizes = st.tuples(st.integers(1, 5), st.integers(1, 5), st.integers(1, 5))


# Recurrent sizes (N, T, D, Dh): batch, time steps, input features, hidden size (chapter 8).
rnn_sizes = st.tuples(st.integers(1, 3), st.integers(1, 4), st.integers(1, 3), st.integers(1, 3))


@st.composite
def rnn_problems(draw, gates=1):
    """Arguments (x, h0, Wx, Wh, b) of rnn_forward (gates=1) or lstm_forward (gates=4), float64,
    with standard normal inputs and weights of scale 0.5, so that tanh and sigma are not saturated."""
    N, T, D, Dh = draw(rnn_sizes)
    rng = np.random.default_rng(draw(seeds()))
    x, h0 = rng.standard_normal((N, T, D)), rng.standard_normal((N, Dh))
    Wx, Wh = 0.5 * rng.standard_normal((D, gates * Dh)), 0.5 * rng.standard_normal((Dh, gates * Dh))
    return x, h0, Wx, Wh, 0.5 * rng.standard_normal(gates * Dh)


# Random scalar programs for bplib.scalar (chapter 2): leaf values, then steps
# (op index, operand index, operand index); operands index the values made so far.
scalar_leaves = st.lists(st.floats(-1.5, 1.5, allow_nan=False, allow_infinity=False), min_size=1, max_size=4)
scalar_steps = st.lists(st.tuples(st.integers(0, 63), st.integers(0, 63), st.integers(0, 63)), min_size=1, max_size=8)


# Conv2d and pooling geometry (chapter 7). Only valid geometry is drawn: the
# image side is drawn after the kernel and the padding, at least kh - 2 pad.
@st.composite
def conv_geometries(draw, max_side=6):
    """A dict N, C, F, H, W, kh, kw, stride, pad for which the kernel fits in the padded input."""
    kh, kw, pad, stride = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(0, 2)), draw(st.integers(1, 3))
    H = draw(st.integers(max(1, kh - 2 * pad), max_side))
    W = draw(st.integers(max(1, kw - 2 * pad), max_side))
    N, C, F = draw(st.integers(1, 2)), draw(st.integers(1, 2)), draw(st.integers(1, 2))
    return dict(N=N, C=C, F=F, H=H, W=W, kh=kh, kw=kw, stride=stride, pad=pad)


@st.composite
def pool_geometries(draw, max_side=6):
    """A dict N, C, H, W, size, stride with the window inside the image; stride < size overlaps windows."""
    size, stride = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    H, W = draw(st.integers(size, max_side)), draw(st.integers(size, max_side))
    return dict(N=draw(st.integers(1, 2)), C=draw(st.integers(1, 2)), H=H, W=W, size=size, stride=stride)


# Normalization problems (chapter 9): (x, gamma, beta, running_mean, running_var),
# float64. Each feature gets its own scale and offset, so that normalizing does
# something; running_var is positive. `spatial` draws x (N, C, H, W) with N H W >= 2.
@st.composite
def norm_problems(draw, spatial=False, min_batch=2):
    """Arguments of batchnorm_forward (x (N, D)) or spatial_batchnorm_forward (x (N, C, H, W))."""
    rng = np.random.default_rng(draw(seeds()))
    if spatial:
        N, D, H, W = draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
        shape = (N, D, H, W) if N * H * W >= min_batch else (N, D, H, W + 1)
        scale, offset = rng.uniform(0.5, 2.0, (D, 1, 1)), rng.standard_normal((D, 1, 1))
    else:
        D = draw(st.integers(1, 5))
        shape = (draw(st.integers(min_batch, 6)), D)
        scale, offset = rng.uniform(0.5, 2.0, D), rng.standard_normal(D)
    x = scale * rng.standard_normal(shape) + offset
    return x, rng.standard_normal(D), rng.standard_normal(D), rng.standard_normal(D), rng.uniform(0.5, 2.0, D)


# Hostile values for an array argument, each with the error a public function must raise
# (the message naming the function and the argument is checked by each test file).
def hostile_arrays(shape=(2, 3)):
    """name -> (value, exception type) for a float array argument of the given shape."""
    good = np.ones(shape)
    return {
        "bool array": (good.astype(bool), TypeError),
        "complex array": (good.astype(complex), TypeError),
        "float16 array": (good.astype(np.float16), TypeError),
        "object array": (good.astype(object), TypeError),
        "string array": (np.full(shape, "a"), TypeError),
        "masked array": (np.ma.masked_array(good, mask=good.astype(bool)), TypeError),
        "ragged list": ([[1.0, 2.0], [3.0]], TypeError),
        "string": ("abc", TypeError),
        "None": (None, TypeError),
        "dict": ({}, TypeError),
        "Python bool": (True, TypeError),
        "numpy bool": (np.True_, TypeError),
        "NaN": (np.full(shape, np.nan), ValueError),
        "inf": (np.full(shape, np.inf), ValueError),
        "-inf": (np.full(shape, -np.inf), ValueError),
        "int too large for a float": (2**2000, ValueError),
    }


def as_matrix(a):
    """np.matrix(a), without numpy's PendingDeprecationWarning: the subclass whose * is a matrix product."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        return np.matrix(a)
