"""Losses, each the mean over the batch (chapter 1; softmax cross-entropy in chapter 6).

The first axis of a prediction is the batch axis N; a loss sums over every
other axis and divides by N. A loss's backward returns the gradient with
respect to the prediction only: targets and labels are data, not parameters.
The backward's ``dloss`` is the upstream gradient of the scalar loss (1.0
when the loss is the last node of the graph).
"""

from contextlib import contextmanager
from typing import NamedTuple

import numpy as np

from bplib._validate import all_finite, as_float_array, check_cache, check_int, check_real, check_same_shape, overflow_error

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
    if pred.shape[0] == 0:  # the mean over an empty batch is 0 / 0
        raise ValueError(f"{fn}: argument '{pred_name}' must hold at least one example (N >= 1), got shape {pred.shape}")
    check_same_shape(fn, pred_name, pred, target_name, target)
    return pred, target


def _zero_one(fn, name, t):
    if t.size and (t.min() < 0 or t.max() > 1):
        raise ValueError(f"{fn}: argument '{name}' must hold values in [0, 1], got values in [{t.min():.6g}, {t.max():.6g}]")


@contextmanager
def _renamed(fn, inner):
    """Let an error of ``inner``, called by the convenience function ``fn``, name ``fn`` instead."""
    try:
        yield
    except (TypeError, ValueError) as exc:
        message = str(exc)
        if type(exc) not in (TypeError, ValueError) or not message.startswith(inner + ":"):
            raise
        raise type(exc)(fn + message[len(inner):]) from None


_FLOAT_MAX = {np.dtype(t): float(np.finfo(t).max) for t in (np.float32, np.float64)}


def _dloss(fn, dloss, dtype):
    """The upstream gradient of a loss: a finite real number that fits the dtype of the gradient."""
    dloss = check_real(fn, "dloss", dloss)
    if abs(dloss) > _FLOAT_MAX[np.dtype(dtype)]:
        raise ValueError(f"{fn}: argument 'dloss' = {dloss:.3g} overflows the {np.dtype(dtype).name} gradient")
    return dloss


def _finite_result(fn, what, a):
    if not all_finite(a):
        raise overflow_error(fn, what, a.dtype)
    return a


def half_squared_error(y, t):
    """L = (1 / 2N) sum_n sum_j (y_nj - t_nj)^2.

    Parameters: y, predictions (N, ...); t, targets of the same shape. Returns: L, a float.
    Its gradient (y - t) / N is derived in chapter 2 (the worked example) and chapter 3 (BP1).
    """
    with _renamed("half_squared_error", "half_squared_error_forward"):
        return half_squared_error_forward(y, t)[0]


def half_squared_error_forward(y, t):
    """L = (1 / 2N) sum (y - t)^2; the cache keeps y - t and N.

    Parameters: y, predictions (N, ...); t, targets of the same shape.
    Returns: (L, cache), L a float. Finite whenever the true L is: a square that
    overflows is recomputed on y - t scaled by its largest entry; a true L beyond the
    float range raises ValueError. Derived in chapter 2.
    """
    fn = "half_squared_error_forward"
    y, t = _prediction_and_target(fn, "y", y, "t", t)
    n = y.shape[0]
    with np.errstate(over="ignore", invalid="ignore"):
        diff = _finite_result(fn, "y - t", y - t)
        loss = 0.5 * np.sum(diff * diff) / n
        if not np.isfinite(loss):  # (diff / m)^2 <= 1 cannot overflow; L = m (m L(diff / m))
            m = np.max(np.abs(diff))
            loss = m * (m * (0.5 * np.sum(np.square(diff / m)) / n))
    if not np.isfinite(loss):
        raise overflow_error(fn, "the loss", diff.dtype)
    return float(loss), HalfSquaredErrorCache(diff, n)


def half_squared_error_backward(dloss, cache):
    """dy = dloss (y - t) / N.

    Parameters: dloss, a float; cache from half_squared_error_forward.
    Returns: dy, the shape of y. Derived in chapter 2.
    """
    fn = "half_squared_error_backward"
    cache = check_cache(fn, cache, HalfSquaredErrorCache)
    dloss = _dloss(fn, dloss, cache.diff.dtype)
    with np.errstate(over="ignore"):
        return _finite_result(fn, "the gradient", dloss * cache.diff / cache.n)


def binary_cross_entropy(p, t):
    """L = -(1/N) sum [t log p + (1 - t) log(1 - p)], p clipped to [1e-12, 1 - 1e-12] (float32: to below 1).

    Parameters: p, probabilities (N, ...) in [0, 1]; t, targets in [0, 1] of the same shape.
    Returns: L, a float. Derived in chapter 1.
    """
    with _renamed("binary_cross_entropy", "binary_cross_entropy_forward"):
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
    Returns: dp, the shape of p; |dp| <= |dloss| 1e12 / N, so a huge dloss can overflow
    (ValueError). Derived in chapter 1.
    """
    fn = "binary_cross_entropy_backward"
    cache = check_cache(fn, cache, BinaryCrossEntropyCache)
    q, t = cache.p, cache.t  # p as clipped in the forward
    dloss = _dloss(fn, dloss, q.dtype)
    with np.errstate(over="ignore"):
        return _finite_result(fn, "the gradient", dloss * (q - t) / (q * (1.0 - q)) / q.shape[0])


def binary_cross_entropy_with_logits(z, t):
    """L = (1/N) sum [max(z, 0) - t z + log(1 + exp(-|z|))], which equals BCE(sigma(z), t).

    Parameters: z, logits (N, ...); t, targets in [0, 1] of the same shape.
    Returns: L, a float, finite for any finite z. Derived in chapter 1.
    """
    with _renamed("binary_cross_entropy_with_logits", "binary_cross_entropy_with_logits_forward"):
        return binary_cross_entropy_with_logits_forward(z, t)[0]


def binary_cross_entropy_with_logits_forward(z, t):
    """L = (1/N) sum [max(z, 0) - t z + log1p(exp(-|z|))]; the cache keeps z and t.

    Parameters: z, logits (N, ...); t, targets of the same shape.
    Returns: (L, cache), L a float. Each term is at most |z| + log 2; a sum that
    overflows is recomputed scaled, and a true L beyond the float range raises
    ValueError. Derived in chapter 1.
    """
    fn = "binary_cross_entropy_with_logits_forward"
    z, t = _prediction_and_target(fn, "z", z, "t", t)
    _zero_one(fn, "t", t)
    # -log sigma(z) = log(1 + e^-z), written so that no exponential overflows.
    per_entry = np.maximum(z, 0.0) - t * z + np.log1p(np.exp(-np.abs(z)))
    n = z.shape[0]
    with np.errstate(over="ignore"):
        loss = np.sum(per_entry) / n
        if not np.isfinite(loss):
            # the terms are finite and >= 0: sum them scaled by the largest
            m = np.max(per_entry)
            loss = m * (np.sum(per_entry / m) / n)
    if not np.isfinite(loss):
        raise overflow_error(fn, "the loss", per_entry.dtype)
    return float(loss), BinaryCrossEntropyWithLogitsCache(z, t)


def binary_cross_entropy_with_logits_backward(dloss, cache):
    """dz = dloss (sigma(z) - t) / N: the sigmoid's derivative cancels.

    Parameters: dloss, a float; cache from binary_cross_entropy_with_logits_forward.
    Returns: dz, the shape of z. Derived in chapter 1.
    """
    fn = "binary_cross_entropy_with_logits_backward"
    cache = check_cache(fn, cache, BinaryCrossEntropyWithLogitsCache)
    z, t = cache.z, cache.t
    dloss = _dloss(fn, dloss, z.dtype)  # |sigma(z) - t| <= 1, so |dz| <= |dloss| / N
    # one new array, updated in place: sigma(z) = 1 / (1 + e^-z) as in activations
    dz = np.negative(z)
    with np.errstate(over="ignore"):  # e^-z = inf gives sigma = 0 exactly
        np.exp(dz, out=dz)
    dz += 1.0
    np.reciprocal(dz, out=dz)
    dz -= t
    dz *= dloss
    dz /= z.shape[0]
    return dz


def _logits(fn, z, finite=True):
    z = as_float_array(fn, "z", z, finite=finite)
    if z.ndim == 0 or z.shape[-1] == 0:
        raise ValueError(f"{fn}: argument 'z' must have a class axis (the last) with K >= 1 classes, got shape {z.shape}")
    return z


def _log_softmax(z):
    # log-sum-exp trick: subtracting the row maximum changes nothing
    # mathematically and keeps every exponent <= 0, so nothing overflows.
    m = np.max(z, axis=-1, keepdims=True)
    # a gap beyond the float range gives -inf, and exp(-inf) = 0
    with np.errstate(over="ignore"):
        out = z - m
        # exp in place: one array, not two
        lse = np.log(np.sum(np.exp(out, out=out), axis=-1, keepdims=True))
        np.subtract(z, m, out=out)  # z - m again, since exp overwrote it
    out -= lse
    return out


def _finite_log(fn, out):
    """log softmax is finite for finite z unless z_k - max z is beyond the float range."""
    if not all_finite(out):
        raise overflow_error(fn, "log softmax (the gap between two logits of a row)", out.dtype)
    return out


def _softmax(z):
    s = _log_softmax(z)
    return np.exp(s, out=s)  # exp(log softmax(z)), in place


def softmax(z):
    """s_k = exp(z_k) / sum_j exp(z_j), over the last axis, stable for any finite z.

    Parameters: z, logits (N, K) (any shape; the last axis holds the classes).
    Returns: s, the shape of z, each row summing to one. Derived in chapter 6.
    """
    return _softmax(_logits("softmax", z))


def softmax_forward(z):
    """s = softmax(z) over the last axis; the cache keeps s.

    Parameters: z, logits (N, K). Returns: (s, cache), s (N, K). Derived in chapter 6.
    """
    s = _softmax(_logits("softmax_forward", z))
    return s, SoftmaxCache(s)


def _rescaled(fn, backward, g, cache):
    """m backward(g / m, cache) with m = max |g|: for a backward, linear in g, whose intermediates overflowed.

    The entries of g / m are at most 1, so nothing inside overflows; a result that
    still does not fit the float range raises ValueError.
    """
    m = np.max(np.abs(g))
    with np.errstate(over="ignore"):
        out = backward(g / m, cache)
        out *= m
    if not all_finite(out):
        raise overflow_error(fn, "the gradient", out.dtype)
    return out


def softmax_backward(ds, cache):
    """dz = s * (ds - sum_k ds_k s_k): the Jacobian diag(s) - s s^T applied to ds,
    never formed.

    Parameters: ds, the shape of s; cache from softmax_forward. Returns: dz (N, K).
    Derived in chapter 6.
    """
    s = check_cache("softmax_backward", cache, SoftmaxCache).s
    ds = as_float_array("softmax_backward", "ds", ds)
    check_same_shape("softmax_backward", "ds", ds, "s", s)
    with np.errstate(over="ignore", invalid="ignore"):
        # ds_k minus the s-weighted mean of ds
        dz = ds - np.sum(ds * s, axis=-1, keepdims=True)
        dz *= s
    if not all_finite(dz):
        # |ds| near the float limit: the map is linear in ds, so scale ds down
        return _rescaled("softmax_backward", softmax_backward, ds, cache)
    return dz


def log_softmax(z):
    """log s_k = z_k - log sum_j exp(z_j), over the last axis, by the log-sum-exp trick.

    Parameters: z, logits (N, K). Returns: an array the shape of z, every entry <= 0.
    Derived in chapter 6.
    """
    return _finite_log("log_softmax", _log_softmax(_logits("log_softmax", z)))


def log_softmax_forward(z):
    """out = log_softmax(z); the cache keeps s = exp(out).

    Parameters: z, logits (N, K). Returns: (out, cache), out (N, K). Derived in chapter 6.
    """
    fn = "log_softmax_forward"
    out = _finite_log(fn, _log_softmax(_logits(fn, z)))
    return out, LogSoftmaxCache(np.exp(out))


def log_softmax_backward(dout, cache):
    """dz = dout - s * sum_k dout_k: the Jacobian I - 1 s^T applied to dout.

    Parameters: dout, the shape of out; cache from log_softmax_forward. Returns: dz (N, K).
    Derived in chapter 6.
    """
    s = check_cache("log_softmax_backward", cache, LogSoftmaxCache).s
    dout = as_float_array("log_softmax_backward", "dout", dout)
    check_same_shape("log_softmax_backward", "dout", dout, "out", s)
    with np.errstate(over="ignore", invalid="ignore"):
        dz = s * np.sum(dout, axis=-1, keepdims=True)
        np.subtract(dout, dz, out=dz)
    if not all_finite(dz):  # the sum over k overflowed: the map is linear in dout, so scale dout down
        return _rescaled("log_softmax_backward", log_softmax_backward, dout, cache)
    return dz


def _labels(fn, z, y, K):
    """Check integer labels y (N,) in [0, K) against logits z (N, K) (or any z of N rows)."""
    if not isinstance(y, np.ndarray) or y.dtype.kind not in "iu":
        kind = y.dtype if isinstance(y, np.ndarray) else type(y).__name__
        raise TypeError(f"{fn}: argument 'y' must be an integer numpy array of class labels, got {kind}")
    if z.ndim != 2:
        raise ValueError(f"{fn}: argument 'z' must have shape (N, K), got {z.shape}")
    if y.shape != (z.shape[0],):
        raise ValueError(f"{fn}: argument 'y' must have shape (N,) = ({z.shape[0]},) to match 'z' of shape {z.shape}, got {y.shape}")
    if y.size and (y.min() < 0 or y.max() >= K):
        raise ValueError(f"{fn}: argument 'y' holds labels outside [0, K) = [0, {K}): "
                         f"its smallest is {y.min()} and its largest {y.max()}")
    return y


def onehot(y, K):
    """onehot(y)_nk = 1 if y_n = k else 0.

    Parameters: y, integer labels (N,) in [0, K); K, the number of classes.
    Returns: an (N, K) float64 array. Used in chapter 6.
    """
    K = check_int("onehot", "K", K, minimum=1)
    n = y.shape[0] if isinstance(y, np.ndarray) and y.ndim >= 1 else 0
    y = _labels("onehot", np.empty((n, 0)), y, K)
    try:
        out = np.zeros((n, K))
    except (ValueError, MemoryError) as exc:
        raise ValueError(f"onehot: argument 'K' = {K} is too large for an ({n}, K) array") from exc
    out[np.arange(n), y] = 1.0
    return out


def softmax_cross_entropy(z, y):
    """L = -(1/N) sum_n log softmax(z_n)[y_n], computed from the logits.

    Parameters: z, logits (N, K); y, integer labels (N,) in [0, K).
    Returns: L, a float, finite for any finite logits. Derived in chapter 6.
    """
    with _renamed("softmax_cross_entropy", "softmax_cross_entropy_forward"):
        return softmax_cross_entropy_forward(z, y)[0]


def _sce_inputs(fn, z, y, finite=True):
    z = _logits(fn, z, finite)
    y = _labels(fn, z, y, z.shape[-1])
    if z.shape[0] == 0:  # the mean over an empty batch is 0 / 0
        raise ValueError(f"{fn}: argument 'z' must hold at least one example (N >= 1), got shape {z.shape}")
    return z, y


def softmax_cross_entropy_forward(z, y):
    """L = -(1/N) sum_n log softmax(z_n)[y_n]; the cache keeps softmax(z) and y.

    Parameters: z, logits (N, K); y, integer labels (N,). Returns: (L, cache).
    A NaN or +inf in z, or -inf at a label, is refused (ValueError) by its effect on
    L, which saves a pass over z; -inf elsewhere is a class of probability 0, exactly.
    Raises ValueError if L overflows (a gap between two logits beyond the float range).
    Derived in chapter 6.
    """
    fn = "softmax_cross_entropy_forward"
    z, y = _sce_inputs(fn, z, y, finite=False)
    n = z.shape[0]
    with np.errstate(over="ignore", invalid="ignore"):  # checked through the loss below
        # (N, K), z_nk - m_n <= 0: the log-sum-exp shift
        s = z - np.max(z, axis=1, keepdims=True)
    picked = s[np.arange(n), y]  # (N,), z_n[y_n] - m_n
    np.exp(s, out=s)  # one exponential per entry, in place
    total = np.sum(s, axis=1, keepdims=True)  # (N, 1), in [1, K]
    # -log softmax(z_n)[y_n] = log sum_k e^(z_nk - m_n) - (z_n[y_n] - m_n)
    loss = np.sum(np.log(total[:, 0]) - picked) / n
    if not np.isfinite(loss):
        # a NaN or an infinity in z (refused by name), or a true overflow
        as_float_array(fn, "z", z)
        raise overflow_error(fn, "the loss", s.dtype)
    # softmax(z), for the backward (a product is cheaper than a quotient)
    s *= 1.0 / total
    return float(loss), SoftmaxCrossEntropyCache(s, y)


def softmax_cross_entropy_backward(dloss, cache):
    """dz = dloss (softmax(z) - onehot(y)) / N.

    Parameters: dloss, a float; cache from softmax_cross_entropy_forward.
    Returns: dz (N, K). Derived in chapter 6.
    """
    fn = "softmax_cross_entropy_backward"
    cache = check_cache(fn, cache, SoftmaxCrossEntropyCache)
    s, y = cache.s, cache.y
    # |s - onehot(y)| <= 1, so |dz| <= |dloss| / N
    scale = _dloss(fn, dloss, s.dtype) / s.shape[0]
    dz = s * scale  # (N, K)
    dz[np.arange(s.shape[0]), y] -= scale  # minus onehot(y), scaled
    return dz
