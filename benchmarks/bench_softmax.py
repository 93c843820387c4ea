"""Benchmark cases for softmax, log-softmax and the softmax cross-entropy (chapter 6).

The last two cases time the loss's backward pass two ways at a size where the
explicit Jacobians still fit in memory: the fused (softmax - onehot) / N of the
library, and the chain rule through the (N, K, K) softmax Jacobians that
chapter 6 says never to form.
"""

import numpy as np
import torch_ref
from common import Case

from bplib import losses


def _pair(op, forward, backward, z, *rest, reference=None):
    out, cache = forward(z, *rest)
    dout = np.ones_like(out) if np.ndim(out) else 1.0
    return Case(op, " x ".join(map(str, np.shape(z))), lambda: forward(z, *rest), lambda: backward(dout, cache), reference)


def _unfused_forward(z, y):
    """The loss as two ops: s = softmax(z), then -mean log s[y]; the cache keeps s and y."""
    s = losses.softmax(z)  # (N, K)
    return float(-np.mean(np.log(s[np.arange(len(y)), y]))), (s, y)


def _jacobian_backward(dloss, cache):
    """dz = J^T ds with the Jacobians diag(s) - s s^T built for every row: O(N K^2)."""
    s, y = cache
    n, k = s.shape
    ds = np.zeros_like(s)
    ds[np.arange(n), y] = -dloss / (n * s[np.arange(n), y])  # d(-mean log s[y]) / ds
    J = s[:, :, None] * np.eye(k) - s[:, :, None] * s[:, None, :]  # (N, K, K)
    return np.einsum("nij,ni->nj", J, ds)


def _xent_floor(z, y, reference):
    """The softmax cross-entropy in bare numpy with no checks: a floor for the softmax_cross_entropy row.

    The forward pass makes one new array (the shifted logits), exponentiates it in place, sums each row and
    scales it into softmax(z) for the backward; the backward pass makes one array, dz = (s - onehot(y)) / N.
    Both are the passes bplib.losses makes, without its checks and cache object.
    """
    n, rows = z.shape[0], np.arange(z.shape[0])
    state = {}

    def forward():
        s = z - z.max(axis=1, keepdims=True)
        picked = s[rows, y]
        np.exp(s, out=s)
        total = s.sum(axis=1, keepdims=True)
        loss = float(np.sum(np.log(total[:, 0]) - picked) / n)
        s *= 1.0 / total
        state["s"] = s
        return loss

    forward()

    def backward():
        dz = state["s"] * (1.0 / n)
        dz[rows, y] -= 1.0 / n
        return dz

    return Case("softmax_cross_entropy, numpy floor", " x ".join(map(str, z.shape)), forward, backward, reference)


def cases(rng):
    z = rng.standard_normal((256, 1000))
    y = rng.integers(0, 1000, size=256)
    z_small = rng.standard_normal((64, 100))
    y_small = rng.integers(0, 100, size=64)
    xent = torch_ref.fn("nn.functional.cross_entropy")
    return [
        _pair("softmax", losses.softmax_forward, losses.softmax_backward, z,
              reference=torch_ref.pair(torch_ref.fn("softmax", dim=-1), z)),
        _pair("log_softmax", losses.log_softmax_forward, losses.log_softmax_backward, z,
              reference=torch_ref.pair(torch_ref.fn("log_softmax", dim=-1), z)),
        _pair("softmax_cross_entropy", losses.softmax_cross_entropy_forward, losses.softmax_cross_entropy_backward, z, y,
              reference=torch_ref.pair(xent, z, constants=(y,))),
        _xent_floor(z, y, torch_ref.pair(xent, z, constants=(y,))),
        _pair("softmax_xent (fused)", losses.softmax_cross_entropy_forward, losses.softmax_cross_entropy_backward,
              z_small, y_small, reference=torch_ref.pair(xent, z_small, constants=(y_small,))),
        _pair("softmax_xent (via Jacobian)", _unfused_forward, _jacobian_backward, z_small, y_small),
    ]
