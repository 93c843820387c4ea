"""The minibatch linear (fully connected) layer y = x W + b (chapter 4).

Examples are rows: x (N, D), W (D, M), b (M,), y (N, M). The single-example
chapters write the same layer with column vectors, z = W' a + b with W' of
shape (M, D); chapter 4 shows that W = W' transposed, and that the gradients
are transposes of each other too.

The backward pass never forms the Jacobian of y with respect to x or W (for
N = 64 and D = M = 4096 that of W alone would take about 35 terabytes): each
gradient is one matrix product, dx = dy W^T and dW = x^T dy, and db sums dy
over the batch.
"""

from typing import NamedTuple

import numpy as np

from bplib._validate import all_finite, as_float_array, check_cache, check_shape, overflow_error


class LinearCache(NamedTuple):
    """What linear_backward needs: x for dW = x^T dy, and W for dx = dy W^T."""

    x: np.ndarray
    W: np.ndarray
    made_by = "linear_forward"


def _check_operands(fn, x, W, b):
    x = as_float_array(fn, "x", x, ndim=2)
    W = as_float_array(fn, "W", W, ndim=2)
    b = as_float_array(fn, "b", b, ndim=1)
    if x.shape[1] != W.shape[0]:
        raise ValueError(
            f"{fn}: argument 'x' has shape {x.shape} but 'W' has shape {W.shape}; "
            f"x (N, D) needs W (D, M), so W must have {x.shape[1]} rows"
        )
    if b.shape[0] != W.shape[1]:
        raise ValueError(
            f"{fn}: argument 'b' has shape {b.shape} but 'W' has shape {W.shape}; "
            f"W (D, M) needs b (M,), so b must have {W.shape[1]} entries"
        )
    return x, W, b


def _check_result(fn, what, *arrays):
    """Refuse a result that overflowed: finite inputs, but an entry beyond the float range."""
    for a in arrays:
        if not all_finite(a):
            raise overflow_error(fn, what, a.dtype)


def linear_forward(x, W, b):
    """y = x W + b, that is y_nm = sum_d x_nd W_dm + b_m.

    Parameters: x, inputs (N, D); W, weights (D, M); b, biases (M,).
    Returns: (y, cache), y of shape (N, M); the cache keeps x and W. Raises ValueError
    when an entry of y overflows the float range (the inputs are too large).
    Derived in chapter 4.
    """
    x, W, b = _check_operands("linear_forward", x, W, b)
    with np.errstate(over="ignore", invalid="ignore"):  # an overflow is reported below, by name
        y = x @ W + b  # (N, M)
    _check_result("linear_forward", "y = x W + b", y)
    return y, LinearCache(x, W)


def linear_backward(dy, cache):
    """dx = dy W^T, dW = x^T dy, db = sum_n dy_n.

    Parameters: dy, upstream gradient (N, M); cache from linear_forward.
    Returns: (dx, dW, db) of shapes (N, D), (D, M) and (M,). Raises ValueError when a
    gradient overflows the float range. Derived in chapter 4.
    """
    cache = check_cache("linear_backward", cache, LinearCache)
    x, W = cache.x, cache.W
    dy = as_float_array("linear_backward", "dy", dy, ndim=2)
    check_shape("linear_backward", "dy", dy, (x.shape[0], W.shape[1]))
    with np.errstate(over="ignore", invalid="ignore"):
        dx = dy @ W.T  # (N, M) @ (M, D) -> (N, D)
        dW = x.T @ dy  # (D, N) @ (N, M) -> (D, M)
        db = dy.sum(axis=0)  # (M,)
    _check_result("linear_backward", "a gradient", dx, dW, db)
    return dx, dW, db
