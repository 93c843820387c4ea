"""Benchmark cases for the activations and the chapter 1 losses, with their PyTorch references."""

import numpy as np
import torch_ref
from common import Case

from bplib import activations, losses


def _pair(op, forward, backward, *args, reference=None):
    out, cache = forward(*args)
    dout = np.ones_like(out) if np.ndim(out) else 1.0
    size = " x ".join(map(str, np.shape(args[0])))
    return Case(op, size, lambda: forward(*args), lambda: backward(dout, cache), reference)


def cases(rng):
    x = rng.standard_normal((256, 1024))
    t = (rng.random((256, 1024)) > 0.5).astype(np.float64)
    n = x.shape[0]
    bce = torch_ref.fn("nn.functional.binary_cross_entropy_with_logits", reduction="sum")
    return [
        _pair("sigmoid", activations.sigmoid_forward, activations.sigmoid_backward, x,
              reference=torch_ref.pair(torch_ref.fn("sigmoid"), x)),
        _pair("tanh", activations.tanh_forward, activations.tanh_backward, x, reference=torch_ref.pair(torch_ref.fn("tanh"), x)),
        _pair("relu", activations.relu_forward, activations.relu_backward, x, reference=torch_ref.pair(torch_ref.fn("relu"), x)),
        _pair("half_squared_error", losses.half_squared_error_forward, losses.half_squared_error_backward, x, t,
              reference=torch_ref.pair(lambda y, t: 0.5 * ((y - t) ** 2).sum() / n, x, constants=(t,))),
        _pair("bce_with_logits", losses.binary_cross_entropy_with_logits_forward, losses.binary_cross_entropy_with_logits_backward,
              x, t, reference=torch_ref.pair(lambda z, t: bce(z, t) / n, x, constants=(t,))),
    ]
