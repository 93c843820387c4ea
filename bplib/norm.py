"""Batch normalization and layer normalization (chapter 9).

Batch norm normalizes each feature over the batch, xhat = (x - mu) / sqrt(var + eps),
then scales and shifts, y = gamma xhat + beta: x (N, D), gamma, beta (D,). In
training mode mu and var are the batch mean and the biased batch variance; in
inference mode they are the running statistics, and y is an affine function of x.

State is explicit. ``batchnorm_forward(x, gamma, beta, running_mean, running_var)``
returns ``(out, running_mean_new, running_var_new, cache)``, like
``rnn.lstm_step_forward``: the outputs first, the cache last. The new running
statistics are new arrays, running = (1 - momentum) running + momentum batch,
with the unbiased batch variance (factor N / (N - 1)), as in PyTorch; the
inputs are never modified. The statistics carry no gradient, so the backward
takes ``dout`` only and returns (dx, dgamma, dbeta). Training needs N >= 2:
with one example the batch variance is 0 and the unbiased one undefined.

Two backward passes of the same forward: ``batchnorm_backward_steps`` walks the
graph mu, xc, sq, var, std, inv, xhat, scaled, out one node at a time, and
``batchnorm_backward`` uses the compact formula
dx = (1/N) gamma inv [N dout - sum_n dout - xhat sum_n (dout xhat)], inv = (var + eps)^(-1/2).
Layer norm normalizes each example over its D features instead; spatial batch
norm treats every pixel of x (N, C, H, W) as an example of its channel's feature.
"""

from typing import NamedTuple

import numpy as np

from bplib._validate import as_float_array, check_cache, check_real, check_shape


class BatchnormCache(NamedTuple):
    """What both batch norm backwards need: xc = x - mu (N, D), std and inv = 1 / std (D,),
    xhat (N, D), gamma (D,), and whether the batch statistics were used (training)."""

    xc: np.ndarray
    std: np.ndarray
    inv: np.ndarray
    xhat: np.ndarray
    gamma: np.ndarray
    training: bool
    made_by = "batchnorm_forward"


class LayernormCache(NamedTuple):
    """What layernorm_backward needs: xhat (N, D), inv (N, 1) and gamma (D,)."""

    xhat: np.ndarray
    inv: np.ndarray
    gamma: np.ndarray
    made_by = "layernorm_forward"


class SpatialBatchnormCache(NamedTuple):
    """What spatial_batchnorm_backward needs: the batch norm cache of the (N H W, C) rows, and x's shape."""

    inner: BatchnormCache
    shape: tuple
    made_by = "spatial_batchnorm_forward"


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


def _bn_core(x, gamma, beta, running_mean, running_var, training, momentum, eps):
    """The batch norm forward graph on x (N, D), one node a line; no validation."""
    mu = x.mean(axis=0) if training else running_mean  # (D,)
    xc = x - mu  # (N, D)
    sq = xc * xc
    var = sq.mean(axis=0) if training else running_var  # (D,), the biased batch variance
    std = np.sqrt(var + eps)
    inv = 1.0 / std
    xhat = xc * inv  # (N, D)
    scaled = gamma * xhat
    out = scaled + beta
    if training:
        n = x.shape[0]
        new_mean = (1.0 - momentum) * running_mean + momentum * mu
        new_var = (1.0 - momentum) * running_var + momentum * var * (n / (n - 1))
    else:
        new_mean, new_var = running_mean.copy(), running_var.copy()
    return out, new_mean, new_var, BatchnormCache(xc, std, inv, xhat, gamma, training)


def batchnorm_forward(x, gamma, beta, running_mean, running_var, training=True, momentum=0.1, eps=1e-5):
    """y = gamma (x - mu) / sqrt(var + eps) + beta, mu and var per feature: of the batch, or the running ones.

    Parameters: x (N, D); gamma, beta (D,); running_mean, running_var (D,), running_var >= 0;
    training, a bool; momentum in [0, 1], the weight of the new batch; eps > 0.
    Returns: (out, running_mean_new, running_var_new, cache), out (N, D), the new
    statistics (D,) as new arrays (copies of the old ones in inference mode).
    Training mode needs N >= 2 and raises ValueError for a batch of one. Derived in chapter 9.
    """
    fn = "batchnorm_forward"
    training, momentum, eps = _options(fn, training, momentum, eps)
    x = as_float_array(fn, "x", x, ndim=2)
    if training and x.shape[0] < 2:
        raise ValueError(f"{fn}: argument 'x' must hold at least 2 examples in training mode (the unbiased "
                         f"variance divides by N - 1), got shape {x.shape}; use training=False for one example")
    arrays = _bn_args(fn, x, gamma, beta, running_mean, running_var, x.shape[0])
    return _bn_core(x, *arrays, training, momentum, eps)


def _bn_cache(fn, dout, cache):
    c = check_cache(fn, cache, BatchnormCache)
    dout = as_float_array(fn, "dout", dout, ndim=2)
    check_shape(fn, "dout", dout, c.xhat.shape)
    return dout, c.xc, c.std, c.inv, c.xhat, c.gamma, c.training


def _normalize_backward(dxhat, xhat, inv, axis):
    """dx = inv [dxhat - mean(dxhat) - xhat mean(dxhat xhat)], means along axis: the backward of
    xhat = (x - mean x) / sqrt(var x + eps), as the compact formula divided through by N."""
    return inv * (dxhat - dxhat.mean(axis=axis, keepdims=True) - xhat * (dxhat * xhat).mean(axis=axis, keepdims=True))


def _bn_backward(dout, xhat, inv, gamma, training):
    dgamma = (dout * xhat).sum(axis=0)  # (D,)
    dbeta = dout.sum(axis=0)
    # Inference: xhat is affine in x (the running statistics are constants), so dx = gamma inv dout.
    dx = _normalize_backward(gamma * dout, xhat, inv, 0) if training else gamma * inv * dout
    return dx, dgamma, dbeta


def batchnorm_backward(dout, cache):
    """dx = (1/N) gamma inv [N dout - sum_n dout - xhat sum_n(dout xhat)] in training, gamma inv dout in inference.

    Here inv = (var + eps)^(-1/2); dgamma = sum_n dout xhat, dbeta = sum_n dout.
    Parameters: dout (N, D); cache from batchnorm_forward.
    Returns: (dx, dgamma, dbeta) of shapes (N, D), (D,), (D,). Derived in chapter 9.
    """
    dout, _, _, inv, xhat, gamma, training = _bn_cache("batchnorm_backward", dout, cache)
    return _bn_backward(dout, xhat, inv, gamma, training)


def batchnorm_backward_steps(dout, cache):
    """The same gradients as batchnorm_backward, one graph node at a time with its local derivative.

    A sum over the batch in the forward becomes a broadcast in the backward, and
    where two branches of the graph meet (xc feeds xhat and sq) their gradients add.
    Parameters: dout (N, D); cache from batchnorm_forward.
    Returns: (dx, dgamma, dbeta) of shapes (N, D), (D,), (D,). Derived in chapter 9.
    """
    dout, xc, std, inv, xhat, gamma, training = _bn_cache("batchnorm_backward_steps", dout, cache)
    n = xc.shape[0]
    dbeta = dout.sum(axis=0)  # out = scaled + beta, beta broadcast over the batch
    dscaled = dout
    dgamma = (dscaled * xhat).sum(axis=0)  # scaled = gamma xhat
    dxhat = dscaled * gamma
    dxc = dxhat * inv  # xhat = xc inv, branch through xhat
    if not training:  # mu and var are constants: the graph ends at xc = x - running_mean
        return dxc, dgamma, dbeta
    dinv = (dxhat * xc).sum(axis=0)  # (D,)
    dstd = -dinv / (std * std)  # inv = 1 / std
    dvar = dstd * 0.5 / std  # std = sqrt(var + eps)
    dsq = np.broadcast_to(dvar / n, xc.shape)  # var = (1/N) sum_n sq
    dxc = dxc + 2.0 * xc * dsq  # sq = xc^2, branch through sq; the branches add
    dmu = -dxc.sum(axis=0)  # xc = x - mu
    dx = dxc + np.broadcast_to(dmu / n, xc.shape)  # mu = (1/N) sum_n x, and x's direct branch
    return dx, dgamma, dbeta


def layernorm_forward(x, gamma, beta, eps=1e-5):
    """y = gamma (x - mu_n) / sqrt(var_n + eps) + beta, mu_n and var_n (biased) over the D features of each row.

    Parameters: x (N, D) with D >= 1; gamma, beta (D,); eps > 0.
    Returns: (out, cache), out (N, D). No running statistics: training and inference agree.
    Derived in chapter 9.
    """
    fn = "layernorm_forward"
    eps = check_real(fn, "eps", eps, low=0, low_open=True)
    x = as_float_array(fn, "x", x, ndim=2)
    if x.shape[1] < 1:
        raise ValueError(f"{fn}: argument 'x' must have at least one feature, got shape {x.shape}")
    gamma, beta = _features(fn, x, 1, ("gamma", gamma), ("beta", beta))
    xc = x - x.mean(axis=1, keepdims=True)  # (N, D)
    inv = 1.0 / np.sqrt((xc * xc).mean(axis=1, keepdims=True) + eps)  # (N, 1)
    xhat = xc * inv
    return gamma * xhat + beta, LayernormCache(xhat, inv, gamma)


def layernorm_backward(dout, cache):
    """dx_n = (1/D) inv_n [D g_n - sum_d g_n - xhat_n sum_d(g_n xhat_n)], g = gamma dout; per row n.

    dgamma = sum_n dout xhat, dbeta = sum_n dout: the batch norm formula with the roles of the axes swapped.
    Parameters: dout (N, D); cache from layernorm_forward.
    Returns: (dx, dgamma, dbeta) of shapes (N, D), (D,), (D,). Derived in chapter 9.
    """
    cache = check_cache("layernorm_backward", cache, LayernormCache)
    xhat, inv, gamma = cache.xhat, cache.inv, cache.gamma
    dout = as_float_array("layernorm_backward", "dout", dout, ndim=2)
    check_shape("layernorm_backward", "dout", dout, xhat.shape)
    dx = _normalize_backward(gamma * dout, xhat, inv, 1)
    return dx, (dout * xhat).sum(axis=0), dout.sum(axis=0)


def _to_rows(x):
    """(N, C, H, W) -> (N H W, C): one row per pixel, one column per channel."""
    return x.transpose(0, 2, 3, 1).reshape(-1, x.shape[1])


def _from_rows(rows, shape):
    N, C, H, W = shape
    return rows.reshape(N, H, W, C).transpose(0, 3, 1, 2)


def spatial_batchnorm_forward(x, gamma, beta, running_mean, running_var, training=True, momentum=0.1, eps=1e-5):
    """y[n, c, i, j] = gamma_c (x[n, c, i, j] - mu_c) / sqrt(var_c + eps) + beta_c, statistics over n, i, j.

    Parameters: x (N, C, H, W); gamma, beta, running_mean, running_var (C,); training, momentum
    and eps as in batchnorm_forward. Returns: (out, running_mean_new, running_var_new, cache),
    out (N, C, H, W). Training needs N H W >= 2. Derived in chapter 9.
    """
    fn = "spatial_batchnorm_forward"
    training, momentum, eps = _options(fn, training, momentum, eps)
    x = as_float_array(fn, "x", x, ndim=4)
    n = x.shape[0] * x.shape[2] * x.shape[3]
    if training and n < 2:
        raise ValueError(f"{fn}: argument 'x' must hold at least 2 values per channel (N H W >= 2) in training "
                         f"mode, got shape {x.shape}; use training=False")
    arrays = _bn_args(fn, x, gamma, beta, running_mean, running_var, n)
    out, new_mean, new_var, cache = _bn_core(_to_rows(x), *arrays, training, momentum, eps)
    return _from_rows(out, x.shape), new_mean, new_var, SpatialBatchnormCache(cache, x.shape)


def spatial_batchnorm_backward(dout, cache):
    """The batch norm backward on the (N H W, C) rows, reshaped back: dx (N, C, H, W), dgamma, dbeta (C,).

    Parameters: dout (N, C, H, W); cache from spatial_batchnorm_forward.
    Returns: (dx, dgamma, dbeta) of shapes (N, C, H, W), (C,), (C,). Derived in chapter 9.
    """
    fn = "spatial_batchnorm_backward"
    cache = check_cache(fn, cache, SpatialBatchnormCache)
    inner, shape = cache.inner, cache.shape
    dout = as_float_array(fn, "dout", dout, ndim=4)
    check_shape(fn, "dout", dout, shape)
    dout, _, _, inv, xhat, gamma, training = _bn_cache(fn, _to_rows(dout), inner)
    dx, dgamma, dbeta = _bn_backward(dout, xhat, inv, gamma, training)
    return _from_rows(dx, shape), dgamma, dbeta
