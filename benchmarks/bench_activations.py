"""Benchmark cases for the activations and the chapter 1 losses."""

import numpy as np
from common import Case

from bplib import activations, losses


def _pair(op, forward, backward, *args):
    out, cache = forward(*args)
    dout = np.ones_like(out) if np.ndim(out) else 1.0
    return Case(op, " x ".join(map(str, np.shape(args[0]))), lambda: forward(*args), lambda: backward(dout, cache))


def cases(rng):
    x = rng.standard_normal((256, 1024))
    t = (rng.random((256, 1024)) > 0.5).astype(np.float64)
    return [
        _pair("sigmoid", activations.sigmoid_forward, activations.sigmoid_backward, x),
        _pair("tanh", activations.tanh_forward, activations.tanh_backward, x),
        _pair("relu", activations.relu_forward, activations.relu_backward, x),
        _pair("half_squared_error", losses.half_squared_error_forward, losses.half_squared_error_backward, x, t),
        _pair("bce_with_logits", losses.binary_cross_entropy_with_logits_forward, losses.binary_cross_entropy_with_logits_backward, x, t),
    ]
