"""Batch normalization and layer normalization (chapter 9).

Batch norm normalizes each feature over the batch, xhat = (x - mu) / std with
std = sqrt(var + eps), then scales and shifts, y = gamma xhat + beta: x (N, D),
gamma, beta (D,). In training mode mu and var are the batch mean and the biased
batch variance; in inference mode they are the running statistics, and y is an
affine function of x.

State is explicit. ``batchnorm_forward(x, gamma, beta, running_mean, running_var)``
returns ``(out, running_mean_new, running_var_new, cache)``, like
``rnn.lstm_step_forward``: the outputs first, the cache last. The new running
statistics are new arrays, running = (1 - momentum) running + momentum batch,
with the unbiased batch variance (factor N / (N - 1)), as in PyTorch; the
inputs are never modified. The statistics carry no gradient, so the backward
takes ``dout`` only and returns (dx, dgamma, dbeta). Training needs N >= 2:
with one example the batch variance is 0 and the unbiased one undefined.

Two backward passes of the same forward: ``batchnorm_backward_steps`` walks the
graph mu, xc, xc^2, var, std, xhat, gamma xhat, y one node at a time, and
``batchnorm_backward`` uses the compact formula
dx = gamma / (N std) [N dout - sum_n dout - xhat sum_n (dout xhat)].
Layer norm normalizes each example over its D features instead; spatial batch
norm treats every pixel of x (N, C, H, W) as an example of its channel's feature:
the same functions run on the view (N, C, H W) of x, with sums over axes 0 and 2
and the per-channel vectors broadcast as (C, 1), so no pass transposes x.

Speed: sums over the batch are matrix-vector products (BLAS), sums of products
use einsum (no temporary array), each function updates in place only the arrays
it has just created, and each call makes one large allocation (batch norm keeps
x and the statistics in its cache and recomputes xhat; layer norm keeps xhat in
the same block as its output). Range: layer norm scales a row by its largest
entry before squaring when the plain squares would overflow, so any finite
input gives a finite output. Batch norm in training mode refuses a batch whose
variance does not fit in the dtype of ``running_var`` (float32: |x - mean|
beyond about 1.8e19; float64: about 1.3e154), which the running variance
could not hold.
"""

from typing import NamedTuple

import numpy as np

from bplib._validate import as_float_array, check_cache, check_real, check_shape


class BatchnormCache(NamedTuple):
    """What both batch norm backwards need: the input x (N, D), the mean mu and
    std = sqrt(var + eps) that normalized it (D,), so that xhat = (x - mu) / std, gamma
    (D,), and whether the batch statistics were used (training). For spatial batch
    norm x is the view (N, C, H W) and the vectors are (C,)."""

    x: np.ndarray
    mu: np.ndarray
    std: np.ndarray
    gamma: np.ndarray
    training: bool
    made_by = "batchnorm_forward"

    @property
    def xc(self):
        """x - mu (N, D), the centred input, computed on access."""
        return self.x - _per_feature(self.mu, self.x)

    @property
    def inv(self):
        """1 / std (D,)."""
        return 1.0 / self.std

    @property
    def xhat(self):
        """(x - mu) / std (N, D), the normalized input, computed on access."""
        return (self.x - _per_feature(self.mu, self.x)) / _per_feature(self.std, self.x)


class LayernormCache(NamedTuple):
    """What layernorm_backward needs: xhat (N, D), inv = 1 / sqrt(var_n + eps) (N, 1)
    and gamma (D,)."""

    xhat: np.ndarray
    inv: np.ndarray
    gamma: np.ndarray
    made_by = "layernorm_forward"


class SpatialBatchnormCache(NamedTuple):
    """What spatial_batchnorm_backward needs: the batch norm cache of the view (N, C, H W) of x, and x's shape."""

    inner: BatchnormCache
    shape: tuple
    made_by = "spatial_batchnorm_forward"


def _finite(fn, name, x, total):
    """Refuse NaN and infinity in x, given ``total``, a sum of x's entries computed anyway.

    A sum is finite whenever every entry is (unless it overflows), so the
    element-by-element scan runs only when the sum is not finite.
    """
    if not np.all(np.isfinite(total)):
        if not np.all(np.isfinite(x)):
            raise ValueError(f"{fn}: argument '{name}' contains NaN or infinity")
        raise ValueError(f"{fn}: argument '{name}' is too large: its sums overflow {x.dtype} "
                         f"(largest magnitude {np.max(np.abs(x)):.3g})")


def _column_sums(a):
    """sum_n a[n], a (N, D) -> (D,), as a matrix-vector product (BLAS is faster than a reduction).

    For the pixels of spatial batch norm, a (N, C, P) -> (C,), summed over n and p.
    An overflow gives inf without a warning: every caller checks the sums it uses.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        if a.ndim == 3:
            return np.einsum("ncp->c", a)
        return np.ones(a.shape[0], dtype=a.dtype) @ a


def _dots(a, b):
    """sum_n a[n] b[n] per feature, without a temporary: (N, D) -> (D,), or (N, C, P) -> (C,)."""
    return np.einsum("ncp,ncp->c", a, b) if a.ndim == 3 else np.einsum("nd,nd->d", a, b)


def _per_feature(v, x):
    """A vector of one entry per feature (D,) shaped to broadcast against x: (D,), or (C, 1) for (N, C, P)."""
    return v[:, None] if x.ndim == 3 else v


def _row_sums(a):
    """sum_d a[:, d], a (N, D) -> (N, 1)."""
    with np.errstate(over="ignore", invalid="ignore"):
        return (a @ np.ones(a.shape[1], dtype=a.dtype))[:, None]


def _two_arrays(shape, dtype):
    """Two new arrays of the given shape and dtype, from one allocation.

    With glibc's default allocator, two large arrays made in one call and freed later
    (an output and its cache, or a result and a scratch array) can be handed back to
    the system together and faulted in again at every call, which costs more than the
    arithmetic; one block is reused instead. Each array keeps the block alive.
    """
    block = np.empty((2,) + tuple(shape), dtype=dtype)
    return block[0], block[1]


def _check_output(fn, out, gamma, beta, xhat_bound):
    """Refuse an output y = gamma xhat + beta that overflowed, cheaply since |xhat| is bounded.

    |y| <= |gamma| xhat_bound + |beta| (a (D,) bound); below half the largest float, y
    cannot have overflowed, and no pass over y is needed.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        bound = np.max(np.abs(gamma) * xhat_bound + np.abs(beta), initial=0.0)
    if bound >= np.finfo(out.dtype).max / 2:
        _finite_result(fn, "output", out)


def _finite_result(fn, what, out, sums=None):
    """Refuse a result that overflowed (the true value is beyond the dtype), checked through its column sums."""
    if not np.all(np.isfinite(_column_sums(out) if sums is None else sums)) and not np.all(np.isfinite(out)):
        raise ValueError(f"{fn}: the {what} overflows {out.dtype}; an argument is too large (see the docstring)")


def _options(fn, training, momentum, eps):
    if not isinstance(training, (bool, np.bool_)):
        raise TypeError(f"{fn}: argument 'training' must be True or False, got {type(training).__name__}")
    momentum = check_real(fn, "momentum", momentum, low=0, high=1)
    return bool(training), momentum, check_real(fn, "eps", eps, low=0, low_open=True)


def _features(fn, x, axis, *names_and_arrays):
    """Check that every (name, array) pair is a 1-D array of x.shape[axis] entries; return the arrays."""
    out = []
    for name, a in names_and_arrays:
        a = as_float_array(fn, name, a, ndim=1)
        check_shape(fn, name, a, (x.shape[axis],))
        out.append(a)
    return out


def _bn_args(fn, x, gamma, beta, running_mean, running_var, n):
    """Validate the array arguments of a batch norm forward; n is the number of examples per feature."""
    if x.shape[1] < 1 or n < 1:
        raise ValueError(f"{fn}: argument 'x' must have at least one example and one feature, got shape {x.shape}")
    arrays = _features(fn, x, 1, ("gamma", gamma), ("beta", beta), ("running_mean", running_mean), ("running_var", running_var))
    if np.any(arrays[3] < 0):
        raise ValueError(f"{fn}: argument 'running_var' must be non-negative, got minimum {arrays[3].min()}")
    return arrays


def _bn_core(fn, x, gamma, beta, running_mean, running_var, training, momentum, eps):
    """The batch norm forward on x (N, D), or (N, C, P) for spatial batch norm, checked for NaN through the sums.

    One new (N, D) array: it holds x - mu, then xhat, then y. The cache keeps x and the
    statistics instead of xhat: with glibc's allocator, two fresh large arrays that
    outlive a call are given back to the system together and faulted in again at the
    next call, which costs more than recomputing xhat in the backward pass.
    """
    n = x.size // x.shape[1]  # examples per feature: N, or N H W pixels per channel
    if training:
        mu = _column_sums(x) / n  # (D,), the batch mean
        _finite(fn, "x", x, mu)
        out = x - _per_feature(mu, x)  # (N, D)
        with np.errstate(over="ignore"):
            var = _dots(out, out) / n  # (D,), the biased batch variance
        if not np.all(np.isfinite(var)):
            raise ValueError(f"{fn}: argument 'x' has a batch variance beyond the range of {x.dtype} "
                             f"(largest |x - mean| {np.max(np.abs(out)):.3g}); the running variance could not "
                             f"hold it: scale x down or use float64")
        new_mean = (1.0 - momentum) * running_mean + momentum * mu
        new_var = (1.0 - momentum) * running_var + momentum * var * (n / (n - 1))
    else:  # x is checked through the output below: a NaN or an infinity in x reaches y
        mu, var = running_mean, running_var
        with np.errstate(over="ignore", invalid="ignore"):
            out = x - _per_feature(mu, x)
        new_mean, new_var = running_mean.copy(), running_var.copy()
    std = np.sqrt(var + eps)  # (D,)
    with np.errstate(over="ignore", invalid="ignore"):
        scale = gamma / std  # y = gamma xhat + beta = (gamma / std)(x - mu) + beta: one pass fewer
        if np.all(np.isfinite(scale)):
            out *= _per_feature(scale, x)  # in place: the array was made above
        else:  # gamma / std beyond the float range (a tiny eps): the two products, as the formula reads
            out *= _per_feature(1.0 / std, x)
            out *= _per_feature(gamma, x)
        out += _per_feature(beta, x)
    if training:  # sum_n xhat^2 <= N, so |xhat| <= sqrt(N): a bound on |y| without a pass over y
        _check_output(fn, out, gamma, beta, np.sqrt(n))
    elif not np.all(np.isfinite(sums := _column_sums(out))):  # inference: one check serves x and y
        if not np.all(np.isfinite(x)):
            raise ValueError(f"{fn}: argument 'x' contains NaN or infinity")
        _finite_result(fn, "output", out, sums)
    return out, new_mean, new_var, BatchnormCache(x, mu, std, gamma, training)


def batchnorm_forward(x, gamma, beta, running_mean, running_var, training=True, momentum=0.1, eps=1e-5):
    """y = gamma (x - mu) / sqrt(var + eps) + beta, mu and var per feature: of the batch, or the running ones.

    Parameters: x (N, D); gamma, beta (D,); running_mean, running_var (D,), running_var >= 0;
    training, a bool; momentum in [0, 1], the weight of the new batch; eps > 0.
    Returns: (out, running_mean_new, running_var_new, cache), out (N, D), the new
    statistics (D,) as new arrays (copies of the old ones in inference mode).
    Training mode needs N >= 2 and a batch variance within the range of the dtype
    (module docstring); it raises ValueError otherwise. Derived in chapter 9.
    """
    fn = "batchnorm_forward"
    training, momentum, eps = _options(fn, training, momentum, eps)
    x = as_float_array(fn, "x", x, ndim=2, finite=False)  # NaN is caught through the batch sums
    if training and x.shape[0] < 2:
        raise ValueError(f"{fn}: argument 'x' must hold at least 2 examples in training mode (the unbiased "
                         f"variance divides by N - 1), got shape {x.shape}; use training=False for one example")
    arrays = _bn_args(fn, x, gamma, beta, running_mean, running_var, x.shape[0])
    return _bn_core(fn, x, *arrays, training, momentum, eps)


def _bn_cache(fn, dout, cache):
    c = check_cache(fn, cache, BatchnormCache)
    dout = as_float_array(fn, "dout", dout, ndim=2, finite=False)
    check_shape(fn, "dout", dout, c.x.shape)
    return dout, c.x, c.mu, c.std, c.gamma, c.training


def _bn_backward(fn, dout, x, mu, std, gamma, training):
    """The compact formula, on arrays checked for shape (NaN is caught via dbeta).

    x and dout are (N, D), or (N, C, P) for spatial batch norm; f(v) below shapes a
    vector of one entry per feature to broadcast against them.
    """
    n = dout.size // dout.shape[1]

    def f(v):
        return _per_feature(v, x)

    dbeta = _column_sums(dout)  # (D,)
    _finite(fn, "dout", dout, dbeta)
    dx = x - f(mu)  # one new (N, D) array: x - mu first, then dx
    with np.errstate(over="ignore", invalid="ignore"):
        # (D,), sum_n dout xhat, with xhat = (x - mu) / std
        dgamma = _dots(dout, dx) / std
        if not training:  # the running statistics are constants: y is affine in x
            np.multiply(dout, f(gamma / std), out=dx)
        else:  # dx = gamma / (N std) [N dout - dbeta - xhat dgamma]
            dx *= f(-dgamma / (n * std))  # - xhat dgamma / N, from x - mu
            dx += dout
            dx -= f(dbeta / n)
            dx *= f(gamma / std)
    _finite_result(fn, "gradient dgamma", dgamma, dgamma)
    _finite_result(fn, "gradient dx", dx)
    return dx, dgamma, dbeta


def batchnorm_backward(dout, cache):
    """dx = gamma / (N std) [N dout - sum_n dout - xhat sum_n(dout xhat)] in training, gamma dout / std in inference.

    Here std = sqrt(var + eps); dgamma = sum_n dout xhat, dbeta = sum_n dout.
    Parameters: dout (N, D); cache from batchnorm_forward.
    Returns: (dx, dgamma, dbeta) of shapes (N, D), (D,), (D,). Derived in chapter 9.
    """
    fn = "batchnorm_backward"
    return _bn_backward(fn, *_bn_cache(fn, dout, cache))


def batchnorm_backward_steps(dout, cache):
    """The same gradients as batchnorm_backward, one graph node at a time with its local derivative.

    A sum over the batch in the forward becomes a broadcast in the backward, and
    where two branches of the graph meet (xc feeds xhat and xc^2) their gradients add.
    Parameters: dout (N, D); cache from batchnorm_forward.
    Returns: (dx, dgamma, dbeta) of shapes (N, D), (D,), (D,). Derived in chapter 9.
    """
    fn = "batchnorm_backward_steps"
    return _bn_backward_steps(fn, *_bn_cache(fn, dout, cache))


def _bn_backward_steps(fn, dout, x, mu, std, gamma, training):
    """The graph walk, on arrays already checked for shape (NaN is caught via dbeta)."""
    n = x.shape[0]
    xc = x - mu  # the forward's nodes, recomputed from the cache
    xhat = xc / std
    with np.errstate(over="ignore", invalid="ignore"):
        dbeta = dout.sum(axis=0)  # y = gamma xhat + beta: beta was broadcast, so sum
    _finite(fn, "dout", dout, dbeta)
    dgamma = (dout * xhat).sum(axis=0)  # gamma was broadcast too
    dxhat = dout * gamma
    dxc = dxhat / std  # xhat = xc / std: the branch into xc
    if training:  # (in inference the graph ends at xc = x - running_mean)
        dstd = -(dxhat * xc).sum(axis=0) / (std * std)  # the branch into std
        dvar = dstd / (2.0 * std)  # std = sqrt(var + eps)
        dsq = np.broadcast_to(dvar / n, xc.shape)  # var = mean_n xc^2: a broadcast
        dxc = dxc + 2.0 * xc * dsq  # the branch through xc^2; two branches add
        dmu = -dxc.sum(axis=0)  # xc = x - mu, mu broadcast over the batch
        dxc = dxc + np.broadcast_to(dmu / n, xc.shape)  # mu = mean_n x; and x itself
    _finite_result(fn, "gradient dx", dxc)
    return dxc, dgamma, dbeta


def _scaled_rows(x, eps, xhat):
    """inv (N, 1) of the rows of x, with xhat written into ``xhat``: computed on each row
    divided by its largest magnitude, whose squares cannot overflow."""
    s = np.max(np.abs(x), axis=1, keepdims=True)  # (N, 1)
    s[s == 0] = 1.0
    np.divide(x, s, out=xhat)  # every entry in [-1, 1]
    xhat -= xhat.mean(axis=1, keepdims=True)
    var_r = (xhat * xhat).mean(axis=1, keepdims=True)  # var / s^2
    flat = var_r == 0  # a constant row: xhat = 0, and inv = 1 / sqrt(eps) (eps / s^2 may underflow)
    with np.errstate(divide="ignore", under="ignore"):
        std_r = np.where(flat, 1.0, np.sqrt(var_r + (eps / s) / s))  # sqrt(var + eps) / s
    xhat /= std_r
    with np.errstate(under="ignore"):
        return np.where(flat, 1.0 / np.sqrt(eps), (1.0 / std_r) / s)


def layernorm_forward(x, gamma, beta, eps=1e-5):
    """y = gamma (x - mu_n) / sqrt(var_n + eps) + beta, mu_n and var_n (biased) over the D features of each row.

    Parameters: x (N, D) with D >= 1; gamma, beta (D,); eps > 0.
    Returns: (out, cache), out (N, D). No running statistics: training and inference agree.
    Any finite x gives a finite out (a row whose squares would overflow is scaled first).
    Derived in chapter 9.
    """
    fn = "layernorm_forward"
    eps = check_real(fn, "eps", eps, low=0, low_open=True)
    x = as_float_array(fn, "x", x, ndim=2, finite=False)
    if x.shape[1] < 1:
        raise ValueError(f"{fn}: argument 'x' must have at least one feature, got shape {x.shape}")
    gamma, beta = _features(fn, x, 1, ("gamma", gamma), ("beta", beta))
    d = x.shape[1]
    out, xhat = _two_arrays(x.shape, np.result_type(x, gamma, beta))  # y, and the cache's xhat
    mu = _row_sums(x) / d  # (N, 1)
    with np.errstate(over="ignore", invalid="ignore"):
        np.subtract(x, mu, out=xhat)  # x - mu, then xhat
        var = np.einsum("nd,nd->n", xhat, xhat)[:, None] / d  # (N, 1), biased, per row
    if np.all(np.isfinite(mu)) and np.all(np.isfinite(var)):
        inv = 1.0 / np.sqrt(var + eps)
        xhat *= inv
    elif np.all(np.isfinite(x)):
        inv = _scaled_rows(x, eps, xhat)  # the squares overflowed: rescale first
    else:
        raise ValueError(f"{fn}: argument 'x' contains NaN or infinity")
    with np.errstate(over="ignore", invalid="ignore"):
        np.multiply(xhat, gamma, out=out)
        out += beta
    _check_output(fn, out, gamma, beta, np.sqrt(d))  # sum_d xhat^2 <= D in every row
    return out, LayernormCache(xhat, inv, gamma)


def layernorm_backward(dout, cache):
    """dx_n = inv_n [dxhat_n - mean_d dxhat_n - xhat_n mean_d(dxhat_n xhat_n)], dxhat = gamma dout; per row n.

    dgamma = sum_n dout xhat, dbeta = sum_n dout: the batch norm formula with the roles of the axes swapped.
    Parameters: dout (N, D); cache from layernorm_forward.
    Returns: (dx, dgamma, dbeta) of shapes (N, D), (D,), (D,). Derived in chapter 9.
    """
    fn = "layernorm_backward"
    c = check_cache(fn, cache, LayernormCache)
    dout = as_float_array(fn, "dout", dout, ndim=2, finite=False)
    check_shape(fn, "dout", dout, c.xhat.shape)
    dbeta = _column_sums(dout)  # (D,)
    _finite(fn, "dout", dout, dbeta)
    d, xhat, gamma = dout.shape[1], c.xhat, c.gamma
    dx, dxhat = _two_arrays(dout.shape, np.result_type(dout, xhat, gamma))
    with np.errstate(over="ignore", invalid="ignore"):
        dgamma = np.einsum("nd,nd->d", dout, xhat)  # sum_n dout xhat
        # dx = inv (dxhat - mean_d dxhat - xhat mean_d(dxhat xhat)), with dxhat = gamma dout
        np.multiply(dout, gamma, out=dxhat)
        mean_dxhat = (dout @ gamma)[:, None] / d  # (N, 1), the row means of dxhat
        mean_dxhat_xhat = np.einsum("nd,nd->n", dxhat, xhat)[:, None] / d
        np.multiply(xhat, -mean_dxhat_xhat, out=dx)
        dx += dxhat
        dx -= mean_dxhat
        dx *= c.inv
    _finite_result(fn, "gradient dgamma", dgamma, dgamma)
    _finite_result(fn, "gradient dx", dx)
    return dx, dgamma, dbeta


def _pixels(x):
    """(N, C, H, W) -> (N, C, H W), a view when x is contiguous: each channel's pixels in a row, no transpose."""
    return x.reshape(x.shape[0], x.shape[1], -1)


def spatial_batchnorm_forward(x, gamma, beta, running_mean, running_var, training=True, momentum=0.1, eps=1e-5):
    """y[n, c, i, j] = gamma_c (x[n, c, i, j] - mu_c) / sqrt(var_c + eps) + beta_c, statistics over n, i, j.

    Parameters: x (N, C, H, W); gamma, beta, running_mean, running_var (C,); training, momentum
    and eps as in batchnorm_forward. Returns: (out, running_mean_new, running_var_new, cache),
    out (N, C, H, W). Training needs N H W >= 2. Derived in chapter 9.
    """
    fn = "spatial_batchnorm_forward"
    training, momentum, eps = _options(fn, training, momentum, eps)
    x = as_float_array(fn, "x", x, ndim=4, finite=False)
    n = x.shape[0] * x.shape[2] * x.shape[3]
    if training and n < 2:
        raise ValueError(f"{fn}: argument 'x' must hold at least 2 values per channel (N H W >= 2) in training "
                         f"mode, got shape {x.shape}; use training=False")
    arrays = _bn_args(fn, x, gamma, beta, running_mean, running_var, n)
    out, new_mean, new_var, cache = _bn_core(fn, _pixels(x), *arrays, training, momentum, eps)
    return out.reshape(x.shape), new_mean, new_var, SpatialBatchnormCache(cache, x.shape)


def spatial_batchnorm_backward(dout, cache):
    """The batch norm backward with statistics over n, i, j, on the view (N, C, H W): dx (N, C, H, W), dgamma, dbeta (C,).

    Parameters: dout (N, C, H, W); cache from spatial_batchnorm_forward.
    Returns: (dx, dgamma, dbeta) of shapes (N, C, H, W), (C,), (C,). Derived in chapter 9.
    """
    fn = "spatial_batchnorm_backward"
    cache = check_cache(fn, cache, SpatialBatchnormCache)
    dout = as_float_array(fn, "dout", dout, ndim=4, finite=False)
    check_shape(fn, "dout", dout, cache.shape)
    inner = check_cache(fn, cache.inner, BatchnormCache)
    dx, dgamma, dbeta = _bn_backward(fn, _pixels(dout), inner.x, inner.mu, inner.std, inner.gamma, inner.training)
    return dx.reshape(cache.shape), dgamma, dbeta
