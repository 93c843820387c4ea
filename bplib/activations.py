"""Elementwise activations: sigmoid, tanh and ReLU (chapter 1).

Each activation comes three ways: the plain function, its elementwise
derivative (``*_prime``), and a forward/backward pair for networks. The arrays
may have any shape; the derivative of an elementwise function is diagonal,
so the backward pass is one elementwise product with the upstream gradient.
"""

from typing import NamedTuple

import numpy as np

from bplib._validate import as_float_array, check_cache, check_same_shape


class SigmoidCache(NamedTuple):
    """What sigmoid_backward needs: the output, since sigma' = out (1 - out)."""

    out: np.ndarray
    made_by = "sigmoid_forward"


class TanhCache(NamedTuple):
    """What tanh_backward needs: the output, since tanh' = 1 - out^2."""

    out: np.ndarray
    made_by = "tanh_forward"


class ReluCache(NamedTuple):
    """What relu_backward needs: the input, to know where x > 0."""

    x: np.ndarray
    made_by = "relu_forward"


def _sigmoid(z):
    """sigma(z) = 1 / (1 + e^-z) for a float array z already checked, in one new array.

    Where e^-z overflows to inf (z < -709.78 in float64, z < -88.72 in float32),
    1 / (1 + inf) is exactly 0, the right value to within the smallest normal float
    (2.2e-308, 1.2e-38), so numpy's overflow warning is silenced.
    Every step writes into the array the first one made: a new array per step would
    cost more than the arithmetic (see benchmarks/results.md).
    """
    if z.ndim == 0:  # a number: the in-place steps below need an array
        return _sigmoid(z.reshape(1))[0]
    s = np.negative(z)
    with np.errstate(over="ignore"):
        np.exp(s, out=s)  # e^-z, in (0, inf]
    s += 1.0
    return np.reciprocal(s, out=s)


def sigmoid(z):
    """sigma(z) = 1 / (1 + exp(-z)), finite and exact in its limits 0 and 1 for any
    finite z.

    Parameters: z, array of any shape. Returns: an array of the same shape in [0, 1].
    Derived in chapter 1.
    """
    return _sigmoid(as_float_array("sigmoid", "z", z))


def sigmoid_prime(z):
    """sigma'(z) = sigma(z) (1 - sigma(z)), at most 1/4 (at z = 0).

    Parameters: z, array of any shape. Returns: an array of the same shape.
    Derived in chapter 1.
    """
    s = _sigmoid(as_float_array("sigmoid_prime", "z", z))
    return s * (1.0 - s)


def tanh(z):
    """tanh(z) = (e^z - e^-z) / (e^z + e^-z) = 2 sigma(2z) - 1.

    Parameters: z, array of any shape. Returns: an array of the same shape in [-1, 1].
    Derived in chapter 1.
    """
    return np.tanh(as_float_array("tanh", "z", z))


def tanh_prime(z):
    """tanh'(z) = 1 - tanh(z)^2, at most 1 (at z = 0).

    Parameters: z, array of any shape. Returns: an array of the same shape.
    Derived in chapter 1.
    """
    t = np.tanh(as_float_array("tanh_prime", "z", z))
    return 1.0 - t * t


def relu(z):
    """relu(z) = max(0, z).

    Parameters: z, array of any shape. Returns: an array of the same shape.
    Derived in chapter 1.
    """
    return np.maximum(as_float_array("relu", "z", z), 0.0)


def relu_prime(z):
    """relu'(z) = 1 if z > 0 else 0; at the kink z = 0 we take 0, as PyTorch does.

    Parameters: z, array of any shape. Returns: an array of the same shape.
    Derived in chapter 1.
    """
    z = as_float_array("relu_prime", "z", z)
    return (z > 0).astype(z.dtype)


def _upstream(fn, dout, ref, ref_name):
    dout = as_float_array(fn, "dout", dout)
    check_same_shape(fn, "dout", dout, ref_name, ref)
    return dout


def sigmoid_forward(x):
    """out = sigma(x), elementwise; the cache keeps out, since sigma' = out (1 - out).

    Parameters: x, array of any shape. Returns: (out, cache), out the shape of x.
    Derived in chapter 1.
    """
    out = _sigmoid(as_float_array("sigmoid_forward", "x", x))
    return out, SigmoidCache(out)


def sigmoid_backward(dout, cache):
    """dx = dout * out * (1 - out).

    Parameters: dout, the shape of out; cache from sigmoid_forward.
    Returns: dx, the shape of x. Derived in chapter 1.
    """
    out = check_cache("sigmoid_backward", cache, SigmoidCache).out
    dout = _upstream("sigmoid_backward", dout, out, "out")
    if dout.ndim == 0:
        return dout * out * (1.0 - out)
    dx = np.subtract(1.0, out)  # one new array, updated in place
    dx *= out  # sigma' = out (1 - out)
    dx *= dout
    return dx


def tanh_forward(x):
    """out = tanh(x), elementwise; the cache keeps out, since tanh' = 1 - out^2.

    Parameters: x, array of any shape. Returns: (out, cache), out the shape of x.
    Derived in chapter 1.
    """
    out = np.tanh(as_float_array("tanh_forward", "x", x))
    return out, TanhCache(out)


def tanh_backward(dout, cache):
    """dx = dout * (1 - out^2).

    Parameters: dout, the shape of out; cache from tanh_forward. Returns: dx, the shape of x.
    Derived in chapter 1.
    """
    out = check_cache("tanh_backward", cache, TanhCache).out
    dout = _upstream("tanh_backward", dout, out, "out")
    if dout.ndim == 0:
        return dout * (1.0 - out * out)
    dx = out * out  # one new array, updated in place
    np.subtract(1.0, dx, out=dx)  # tanh' = 1 - out^2
    dx *= dout
    return dx


def relu_forward(x):
    """out = max(0, x), elementwise; the cache keeps x to know where x > 0.

    Parameters: x, array of any shape. Returns: (out, cache), out the shape of x.
    Derived in chapter 1.
    """
    x = as_float_array("relu_forward", "x", x)
    return np.maximum(x, 0.0), ReluCache(x)


def relu_backward(dout, cache):
    """dx = dout where x > 0, else 0 (the gradient at the kink x = 0 is taken as 0).

    Parameters: dout, the shape of x; cache from relu_forward. Returns: dx, the shape of x.
    Derived in chapter 1.
    """
    x = check_cache("relu_backward", cache, ReluCache).x
    dout = _upstream("relu_backward", dout, x, "x")
    if dout.ndim == 0:
        return dout * (x > 0)
    dx = np.greater(x, 0.0, out=np.empty_like(dout), casting="unsafe")  # relu'(x): 1.0 where x > 0, else 0.0
    dx *= dout  # a product with the mask, much faster than a masked assignment dout[x <= 0] = 0
    return dx
