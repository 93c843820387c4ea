"""Losses, each the mean over the batch (chapter 1; softmax cross-entropy in chapter 6).

The first axis of a prediction is the batch axis N; a loss sums over every
other axis and divides by N. A loss's backward returns the gradient with
respect to the prediction only: targets and labels are data, not parameters.
The backward's ``dloss`` is the upstream gradient of the scalar loss (1.0
when the loss is the last node of the graph).
"""

from typing import NamedTuple

import numpy as np

from bplib._validate import as_float_array, check_cache, check_int, check_real, check_same_shape

# Probabilities are clipped to [EPS, 1 - EPS] in the probability form of the
# binary cross-entropy, so that log(0) never happens; the logits form needs no clip.
# In float32, 1 - EPS rounds to 1, so the top of the range is the largest float32 below 1.
EPS = 1e-12


class HalfSquaredErrorCache(NamedTuple):
    """What half_squared_error_backward needs: diff = y - t and the batch size n."""

    diff: np.ndarray
    n: int
    made_by = "half_squared_error_forward"


class BinaryCrossEntropyCache(NamedTuple):
    """What binary_cross_entropy_backward needs: the clipped probabilities p and the targets t."""

    p: np.ndarray
    t: np.ndarray
    made_by = "binary_cross_entropy_forward"


class BinaryCrossEntropyWithLogitsCache(NamedTuple):
    """What binary_cross_entropy_with_logits_backward needs: the logits z and the targets t."""

    z: np.ndarray
    t: np.ndarray
    made_by = "binary_cross_entropy_with_logits_forward"


class SoftmaxCache(NamedTuple):
    """What softmax_backward needs: the output s."""

    s: np.ndarray
    made_by = "softmax_forward"


class LogSoftmaxCache(NamedTuple):
    """What log_softmax_backward needs: s = exp(out), the softmax."""

    s: np.ndarray
    made_by = "log_softmax_forward"


class SoftmaxCrossEntropyCache(NamedTuple):
    """What softmax_cross_entropy_backward needs: s = softmax(z) and the labels y."""

    s: np.ndarray
    y: np.ndarray
    made_by = "softmax_cross_entropy_forward"


def _prediction_and_target(fn, pred_name, pred, target_name, target):
    pred = as_float_array(fn, pred_name, pred)
    target = as_float_array(fn, target_name, target)
    if pred.ndim == 0:
        raise ValueError(f"{fn}: argument '{pred_name}' must have a batch axis, got shape {pred.shape}")
    check_same_shape(fn, pred_name, pred, target_name, target)
    return pred, target


def _zero_one(fn, name, t):
    if np.any((t < 0) | (t > 1)):
        raise ValueError(f"{fn}: argument '{name}' must hold values in [0, 1]")


def half_squared_error(y, t):
    """L = (1 / 2N) sum_n sum_j (y_nj - t_nj)^2.

    Parameters: y, predictions (N, ...); t, targets of the same shape. Returns: L, a float.
    Its gradient (y - t) / N is derived in chapter 2 (the worked example) and chapter 3 (BP1).
    """
    return half_squared_error_forward(y, t)[0]


def half_squared_error_forward(y, t):
    """L = (1 / 2N) sum (y - t)^2; the cache keeps y - t and N.

    Parameters: y, predictions (N, ...); t, targets of the same shape.
    Returns: (L, cache), L a float. Derived in chapter 2.
    """
    y, t = _prediction_and_target("half_squared_error_forward", "y", y, "t", t)
    diff = y - t
    n = y.shape[0]
    return float(0.5 * np.sum(diff * diff) / n), HalfSquaredErrorCache(diff, n)


def half_squared_error_backward(dloss, cache):
    """dy = dloss (y - t) / N.

    Parameters: dloss, a float; cache from half_squared_error_forward.
    Returns: dy, the shape of y. Derived in chapter 2.
    """
    cache = check_cache("half_squared_error_backward", cache, HalfSquaredErrorCache)
    dloss = check_real("half_squared_error_backward", "dloss", dloss)
    return dloss * cache.diff / cache.n


def binary_cross_entropy(p, t):
    """L = -(1/N) sum [t log p + (1 - t) log(1 - p)], p clipped to [1e-12, 1 - 1e-12] (float32: to below 1).

    Parameters: p, probabilities (N, ...) in [0, 1]; t, targets in [0, 1] of the same shape.
    Returns: L, a float. Derived in chapter 1.
    """
    return binary_cross_entropy_forward(p, t)[0]


def binary_cross_entropy_forward(p, t):
    """L = -(1/N) sum [t log p + (1 - t) log(1 - p)] on clipped probabilities.

    Parameters: p, probabilities (N, ...); t, targets of the same shape.
    Returns: (L, cache), L a float. Derived in chapter 1.
    """
    fn = "binary_cross_entropy_forward"
    p, t = _prediction_and_target(fn, "p", p, "t", t)
    _zero_one(fn, "p", p)
    _zero_one(fn, "t", t)
    top = min(p.dtype.type(1.0 - EPS), np.nextafter(p.dtype.type(1.0), p.dtype.type(0.0)))
    q = np.clip(p, EPS, top)
    loss = -np.sum(t * np.log(q) + (1.0 - t) * np.log1p(-q)) / p.shape[0]
    return float(loss), BinaryCrossEntropyCache(q, t)


def binary_cross_entropy_backward(dloss, cache):
    """dp = dloss (p - t) / (p (1 - p)) / N, with p clipped as in the forward.

    Parameters: dloss, a float; cache from binary_cross_entropy_forward.
    Returns: dp, the shape of p. Derived in chapter 1.
    """
    cache = check_cache("binary_cross_entropy_backward", cache, BinaryCrossEntropyCache)
    q, t = cache.p, cache.t  # p as clipped in the forward
    dloss = check_real("binary_cross_entropy_backward", "dloss", dloss)
    return dloss * (q - t) / (q * (1.0 - q)) / q.shape[0]


def binary_cross_entropy_with_logits(z, t):
    """L = (1/N) sum [max(z, 0) - t z + log(1 + exp(-|z|))], which equals BCE(sigma(z), t).

    Parameters: z, logits (N, ...); t, targets in [0, 1] of the same shape.
    Returns: L, a float, finite for any finite z. Derived in chapter 1.
    """
    return binary_cross_entropy_with_logits_forward(z, t)[0]


def binary_cross_entropy_with_logits_forward(z, t):
    """L = (1/N) sum [max(z, 0) - t z + log1p(exp(-|z|))]; the cache keeps z and t.

    Parameters: z, logits (N, ...); t, targets of the same shape.
    Returns: (L, cache), L a float. Derived in chapter 1.
    """
    fn = "binary_cross_entropy_with_logits_forward"
    z, t = _prediction_and_target(fn, "z", z, "t", t)
    _zero_one(fn, "t", t)
    # -log sigma(z) = log(1 + e^-z), written so that no exponential overflows.
    per_entry = np.maximum(z, 0.0) - t * z + np.log1p(np.exp(-np.abs(z)))
    return float(np.sum(per_entry) / z.shape[0]), BinaryCrossEntropyWithLogitsCache(z, t)


def binary_cross_entropy_with_logits_backward(dloss, cache):
    """dz = dloss (sigma(z) - t) / N: the sigmoid's derivative cancels.

    Parameters: dloss, a float; cache from binary_cross_entropy_with_logits_forward.
    Returns: dz, the shape of z. Derived in chapter 1.
    """
    cache = check_cache("binary_cross_entropy_with_logits_backward", cache, BinaryCrossEntropyWithLogitsCache)
    z, t = cache.z, cache.t
    dloss = check_real("binary_cross_entropy_with_logits_backward", "dloss", dloss)
    e = np.exp(-np.abs(z))
    s = np.where(z >= 0, 1.0, e) / (1.0 + e)  # the stable sigmoid of activations.sigmoid
    return dloss * (s - t) / z.shape[0]


def _logits(fn, z):
    z = as_float_array(fn, "z", z)
    if z.ndim == 0:
        raise ValueError(f"{fn}: argument 'z' must have a class axis, got shape {z.shape}")
    return z


def _log_softmax(z):
    # log-sum-exp trick: subtracting the row maximum changes nothing
    # mathematically and keeps every exponent <= 0, so nothing overflows.
    shifted = z - np.max(z, axis=-1, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=-1, keepdims=True))


def softmax(z):
    """s_k = exp(z_k) / sum_j exp(z_j), over the last axis, stable for any finite z.

    Parameters: z, logits (N, K) (any shape; the last axis holds the classes).
    Returns: s, the shape of z, each row summing to one. Derived in chapter 6.
    """
    return np.exp(_log_softmax(_logits("softmax", z)))


def softmax_forward(z):
    """s = softmax(z) over the last axis; the cache keeps s.

    Parameters: z, logits (N, K). Returns: (s, cache), s (N, K). Derived in chapter 6.
    """
    s = np.exp(_log_softmax(_logits("softmax_forward", z)))
    return s, SoftmaxCache(s)


def softmax_backward(ds, cache):
    """dz = s * (ds - sum_k ds_k s_k): the Jacobian diag(s) - s s^T applied to ds, never formed.

    Parameters: ds, the shape of s; cache from softmax_forward. Returns: dz (N, K).
    Derived in chapter 6.
    """
    s = check_cache("softmax_backward", cache, SoftmaxCache).s
    ds = as_float_array("softmax_backward", "ds", ds)
    check_same_shape("softmax_backward", "ds", ds, "s", s)
    return s * (ds - np.sum(ds * s, axis=-1, keepdims=True))


def log_softmax(z):
    """log s_k = z_k - log sum_j exp(z_j), over the last axis, by the log-sum-exp trick.

    Parameters: z, logits (N, K). Returns: an array the shape of z, every entry <= 0.
    Derived in chapter 6.
    """
    return _log_softmax(_logits("log_softmax", z))


def log_softmax_forward(z):
    """out = log_softmax(z); the cache keeps s = exp(out).

    Parameters: z, logits (N, K). Returns: (out, cache), out (N, K). Derived in chapter 6.
    """
    out = _log_softmax(_logits("log_softmax_forward", z))
    return out, LogSoftmaxCache(np.exp(out))


def log_softmax_backward(dout, cache):
    """dz = dout - s * sum_k dout_k: the Jacobian I - 1 s^T applied to dout.

    Parameters: dout, the shape of out; cache from log_softmax_forward. Returns: dz (N, K).
    Derived in chapter 6.
    """
    s = check_cache("log_softmax_backward", cache, LogSoftmaxCache).s
    dout = as_float_array("log_softmax_backward", "dout", dout)
    check_same_shape("log_softmax_backward", "dout", dout, "out", s)
    return dout - s * np.sum(dout, axis=-1, keepdims=True)


def _labels(fn, z, y):
    if not isinstance(y, np.ndarray) or y.dtype.kind not in "iu":
        kind = y.dtype if isinstance(y, np.ndarray) else type(y).__name__
        raise TypeError(f"{fn}: argument 'y' must be an integer numpy array of class labels, got {kind}")
    if z.ndim != 2:
        raise ValueError(f"{fn}: argument 'z' must have shape (N, K), got {z.shape}")
    if y.shape != (z.shape[0],):
        raise ValueError(f"{fn}: argument 'y' must have shape (N,) = ({z.shape[0]},) to match 'z' of shape {z.shape}, got {y.shape}")
    if y.size and (y.min() < 0 or y.max() >= z.shape[1]):
        raise ValueError(f"{fn}: argument 'y' holds labels outside [0, K) = [0, {z.shape[1]})")
    return y


def onehot(y, K):
    """onehot(y)_nk = 1 if y_n = k else 0.

    Parameters: y, integer labels (N,) in [0, K); K, the number of classes.
    Returns: an (N, K) float64 array. Used in chapter 6.
    """
    K = check_int("onehot", "K", K, minimum=1)
    n = y.shape[0] if isinstance(y, np.ndarray) and y.ndim >= 1 else 0
    y = _labels("onehot", np.empty((n, K)), y)
    out = np.zeros((n, K))
    out[np.arange(n), y] = 1.0
    return out


def softmax_cross_entropy(z, y):
    """L = -(1/N) sum_n log softmax(z_n)[y_n], computed from the logits.

    Parameters: z, logits (N, K); y, integer labels (N,) in [0, K).
    Returns: L, a float, finite for any finite logits. Derived in chapter 6.
    """
    return softmax_cross_entropy_forward(z, y)[0]


def softmax_cross_entropy_forward(z, y):
    """L = -(1/N) sum_n log softmax(z_n)[y_n]; the cache keeps softmax(z) and y.

    Parameters: z, logits (N, K); y, integer labels (N,). Returns: (L, cache).
    Derived in chapter 6.
    """
    fn = "softmax_cross_entropy_forward"
    z = _logits(fn, z)
    y = _labels(fn, z, y)
    logp = _log_softmax(z)
    n = z.shape[0]
    return float(-np.sum(logp[np.arange(n), y]) / n), SoftmaxCrossEntropyCache(np.exp(logp), y)


def softmax_cross_entropy_backward(dloss, cache):
    """dz = dloss (softmax(z) - onehot(y)) / N.

    Parameters: dloss, a float; cache from softmax_cross_entropy_forward.
    Returns: dz (N, K). Derived in chapter 6.
    """
    cache = check_cache("softmax_cross_entropy_backward", cache, SoftmaxCrossEntropyCache)
    s, y = cache.s, cache.y
    dloss = check_real("softmax_cross_entropy_backward", "dloss", dloss)
    dz = s.copy()
    dz[np.arange(s.shape[0]), y] -= 1.0
    return dloss * dz / s.shape[0]
