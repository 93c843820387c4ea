"""Benchmark cases for the activations and the chapter 1 losses, with their PyTorch references."""

import pathlib
import subprocess
import sys

import numpy as np
import torch_ref
from common import Case

from bplib import activations, losses


def _pair(op, forward, backward, *args, reference=None):
    out, cache = forward(*args)
    dout = np.ones_like(out) if np.ndim(out) else 1.0
    size = " x ".join(map(str, np.shape(args[0])))
    return Case(op, size, lambda: forward(*args), lambda: backward(dout, cache), reference)


def _relu_floor(x):
    """ReLU in the fewest numpy calls its formulas need, with no checks and no cache object: a floor for the relu row.

    Forward np.maximum(x, 0) makes one array; backward dout * (x > 0) makes a mask and the gradient.
    """
    dout = np.ones_like(x)
    return Case("relu, numpy floor", " x ".join(map(str, x.shape)), lambda: np.maximum(x, 0.0), lambda: dout * (x > 0),
                torch_ref.pair(torch_ref.fn("relu"), x))


def _sigmoid_floor(x):
    """The sigmoid in bare numpy, one new array per pass, in place after that: a floor for the sigmoid row."""
    dout, s = np.ones_like(x), activations.sigmoid_forward(x)[0]

    def forward():
        out = np.negative(x)
        np.exp(out, out=out)
        out += 1.0
        return np.reciprocal(out, out=out)

    def backward():
        g = np.subtract(1.0, s)
        g *= s
        g *= dout
        return g

    return Case("sigmoid, numpy floor", " x ".join(map(str, x.shape)), forward, backward,
                torch_ref.pair(torch_ref.fn("sigmoid"), x))


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
        _sigmoid_floor(x),
        _relu_floor(x),
    ]


FRESH = """
import sys
import numpy as np
sys.path.insert(0, sys.argv[1])
from common import best_time
from run import settle_allocator
x = np.random.default_rng(0).standard_normal((256, 1024))
t = np.zeros_like(x)
def two_temporaries():
    d = x - t
    return (d * d).sum()
if sys.argv[2] == "settled":
    settle_allocator()
print(best_time(two_temporaries))
"""


def extras(rng):
    """(x - t)^2 summed, two 2 MB temporaries alive at once, in a fresh process before and after
    run.settle_allocator: the cost of glibc's fresh pages that the table's times leave out."""
    here = str(pathlib.Path(__file__).resolve().parent)
    out = []
    for state in ("fresh", "settled"):
        seconds = float(subprocess.run([sys.executable, "-c", FRESH, here, state], capture_output=True, text=True,
                                       check=True).stdout)
        note = "fresh pages" if state == "fresh" else "16 MB freed first"
        out.append((f"(x - t)^2 summed, {state}", "256 x 1024, new process", seconds, note))
    return out
