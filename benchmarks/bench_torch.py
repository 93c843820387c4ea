"""Reference rows from PyTorch on the CPU, when PyTorch happens to be installed.

PyTorch is not a dependency of the course: this module returns no case at all
without it. With it, the same ops at the same sizes as the bplib rows run in
float64 with PyTorch's autograd, on as many threads as numpy's BLAS uses, so
that the two can be read side by side.
"""

import numpy as np
from common import Case

try:
    import torch
    import torch.nn.functional as F
except ImportError:  # the usual case: nothing to compare with
    torch = None


def _threads():
    from threadpoolctl import threadpool_info

    blas = [p["num_threads"] for p in threadpool_info() if p.get("user_api") == "blas"]
    return max(blas) if blas else 1


def _case(op, size, fn, *arrays):
    inputs = [torch.tensor(a, requires_grad=True) for a in arrays]
    out = fn(*inputs)
    dout = torch.ones_like(out)

    def forward():
        return fn(*inputs)

    def backward():
        return torch.autograd.grad(out, inputs, dout, retain_graph=True)

    return Case(f"{op} [torch]", size, forward, backward)


def cases(rng):
    if torch is None:
        return []
    torch.set_num_threads(_threads())
    x = rng.standard_normal((64, 512))
    W, b = rng.standard_normal((512, 512)) / 512**0.5, np.zeros(512)
    img = rng.standard_normal((32, 3, 32, 32))
    K, c = rng.standard_normal((16, 3, 3, 3)), np.zeros(16)
    z, labels = rng.standard_normal((256, 1000)), torch.tensor(rng.integers(0, 1000, 256))
    bn = rng.standard_normal((256, 512))
    return [
        _case("linear", "64 x 512 -> 512", lambda x, W, b: x @ W + b, x, W, b),
        _case("conv2d (fast)", "32x3x32x32 -> 16 ch, 3x3", lambda x, K, c: F.conv2d(x, K, c, padding=1), img, K, c),
        _case("softmax_cross_entropy", "256 x 1000", lambda z: F.cross_entropy(z, labels), z),
        _case("batchnorm", "256 x 512", lambda x: F.batch_norm(x, None, None, training=True), bn),
    ]
