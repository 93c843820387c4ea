"""Benchmark cases for chapter 9: batch norm (both backward passes), layer norm, spatial batch norm.

The two batch norm rows share one forward, so their backward times compare
the step-by-step graph with the compact formula directly.
"""

import numpy as np
import torch_ref
from common import Case

from bplib import norm


def _stateful(forward):
    """forward without the new running statistics: (out, cache)."""
    def pair(*args, **kwargs):
        out, _, _, cache = forward(*args, **kwargs)
        return out, cache
    return pair


def _pair(op, label, forward, backward, *args, reference=None, **kwargs):
    out, cache = forward(*args, **kwargs)
    dout = np.random.default_rng(1).standard_normal(out.shape)
    return Case(op, label, lambda: forward(*args, **kwargs), lambda: backward(dout, cache), reference)


def _batch_norm(x, gamma, beta, rm, rv, training=True):
    """PyTorch's batch norm on (x, gamma, beta), updating copies of the running statistics as bplib does."""
    if torch_ref.torch is None:
        return None
    bn = torch_ref.fn("nn.functional.batch_norm")
    rm, rv = torch_ref.torch.tensor(rm), torch_ref.torch.tensor(rv)
    return torch_ref.pair(lambda x, g, b: bn(x, rm, rv, g, b, training=training, momentum=0.1, eps=1e-5), x, gamma, beta)


def _params(rng, D):
    return rng.standard_normal(D), rng.standard_normal(D), np.zeros(D), np.ones(D)


def _layernorm_floor(x, gamma, beta, eps=1e-5):
    """Layer norm's formulas in bare numpy with no checks: a floor for the layernorm row.

    The same passes as bplib.norm, written as plainly as numpy allows: the forward pass centres, squares and
    scales x (one new array for xhat, one for y); the backward pass forms dxhat and dx with two row reductions.
    """
    d = x.shape[1]
    dout = np.random.default_rng(1).standard_normal(x.shape)
    state = {}

    def forward():
        xhat = x - x.mean(axis=1, keepdims=True)
        inv = 1.0 / np.sqrt(np.einsum("nd,nd->n", xhat, xhat)[:, None] / d + eps)
        xhat *= inv
        y = xhat * gamma
        y += beta
        state.update(xhat=xhat, inv=inv)
        return y

    forward()

    def backward():
        xhat, inv = state["xhat"], state["inv"]
        dgamma, dbeta = np.einsum("nd,nd->d", dout, xhat), dout.sum(axis=0)
        dxhat = dout * gamma
        dx = xhat * (-np.einsum("nd,nd->n", dxhat, xhat)[:, None] / d)
        dx += dxhat
        dx -= (dout @ gamma)[:, None] / d
        dx *= inv
        return dx, dgamma, dbeta

    layer_norm = torch_ref.fn("nn.functional.layer_norm")
    return Case("layernorm, numpy floor", "256x512", forward, backward,
                torch_ref.pair(lambda x, g, b: layer_norm(x, (x.shape[1],), g, b, eps=eps), x, gamma, beta))


def _spatial_floor(x, gamma, beta, running_mean, running_var, eps=1e-5):
    """Spatial batch norm's formulas in bare numpy with no checks and no transposes: a floor for its row.

    The statistics are taken over the axes (0, 2, 3) of x itself, as bplib.norm takes them over the view
    (N, C, H W); the floor keeps xhat for the backward pass, where bplib recomputes x - mu from its cache
    (xhat and y in the forward pass, dx with two reductions over the batch and the pixels in the backward).
    """
    m = x.shape[0] * x.shape[2] * x.shape[3]
    g, b = gamma[:, None, None], beta[:, None, None]
    dout = np.random.default_rng(1).standard_normal(x.shape)
    state = {}

    def forward():
        xhat = x - x.mean(axis=(0, 2, 3), keepdims=True)
        inv = 1.0 / np.sqrt(np.einsum("nchw,nchw->c", xhat, xhat)[:, None, None] / m + eps)
        xhat *= inv
        y = xhat * g
        y += b
        state.update(xhat=xhat, inv=inv)
        return y

    forward()

    def backward():
        xhat, inv = state["xhat"], state["inv"]
        dgamma, dbeta = np.einsum("nchw,nchw->c", dout, xhat), dout.sum(axis=(0, 2, 3))
        dx = xhat * (-dgamma[:, None, None] / m)
        dx += dout
        dx -= (dbeta / m)[:, None, None]
        dx *= g * inv
        return dx, dgamma, dbeta

    return Case("spatial batchnorm, numpy floor", "32x16x16x16", forward, backward,
                _batch_norm(x, gamma, beta, running_mean, running_var))


def cases(rng):
    x = rng.standard_normal((256, 512))
    gamma, beta, rm, rv = _params(rng, 512)
    xs = rng.standard_normal((32, 16, 16, 16))
    bn, spatial = _stateful(norm.batchnorm_forward), _stateful(norm.spatial_batchnorm_forward)
    ps = _params(rng, 16)
    layer_norm = torch_ref.fn("nn.functional.layer_norm")
    return [
        _pair("batchnorm (compact)", "256x512", bn, norm.batchnorm_backward, x, gamma, beta, rm, rv,
              reference=_batch_norm(x, gamma, beta, rm, rv)),
        _pair("batchnorm (steps)", "256x512", bn, norm.batchnorm_backward_steps, x, gamma, beta, rm, rv,
              reference=_batch_norm(x, gamma, beta, rm, rv)),
        _pair("batchnorm inference", "256x512", bn, norm.batchnorm_backward, x, gamma, beta, rm, rv, training=False,
              reference=_batch_norm(x, gamma, beta, rm, rv, training=False)),
        _pair("layernorm", "256x512", norm.layernorm_forward, norm.layernorm_backward, x, gamma, beta,
              reference=torch_ref.pair(lambda x, g, b: layer_norm(x, (x.shape[1],), g, b, eps=1e-5), x, gamma, beta)),
        _layernorm_floor(x, gamma, beta),
        _pair("spatial batchnorm", "32x16x16x16", spatial, norm.spatial_batchnorm_backward, xs, *ps,
              reference=_batch_norm(xs, *ps)),
        _spatial_floor(xs, *ps),
    ]
