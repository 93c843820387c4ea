"""Benchmark cases for the linear layer and a small network built from nn modules."""

import numpy as np
import torch_ref
from common import Case

from bplib import linear, nn


def _linear_case(rng, n, d, m):
    x, W, b = rng.standard_normal((n, d)), rng.standard_normal((d, m)), rng.standard_normal(m)
    y, cache = linear.linear_forward(x, W, b)
    dy = np.ones_like(y)
    reference = torch_ref.pair(lambda x, W, b: x @ W + b, x, W, b)
    return Case("linear", f"{n} x {d} -> {m}", lambda: linear.linear_forward(x, W, b), lambda: linear.linear_backward(dy, cache),
                reference)


def _network_case(rng, n, sizes):
    """Forward of a Sequential of Linear/ReLU, against its backward on one stored cache."""
    layers = []
    for d, m in zip(sizes[:-1], sizes[1:], strict=True):
        layers += [nn.Linear(d, m, rng), nn.ReLU()]
    model = nn.Sequential(*layers[:-1])  # no ReLU after the last layer
    x = rng.standard_normal((n, sizes[0]))
    dy = np.ones((n, sizes[-1]))

    def forward():
        model.forward(x)
        model.clear_cache()  # a forward alone must not pile up caches

    model.forward(x)
    saved = [list(m._caches) for m in model.modules]  # the caches of one forward pass

    def backward():
        # backward pops each cache, so put the same ones back first (a few list copies, no array work)
        for m, caches in zip(model.modules, saved, strict=True):
            m._caches[:] = caches
        model.backward(dy)

    return Case("mlp (Sequential)", f"N={n}, " + "-".join(map(str, sizes)), forward, backward)


def cases(rng):
    return [_linear_case(rng, 64, 512, 512), _network_case(rng, 64, (784, 256, 10))]
