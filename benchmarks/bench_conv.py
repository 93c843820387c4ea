"""Benchmark cases for chapter 7: naive and fast Conv2d, 2 x 2 pooling and LeNet's subsampling.

The naive pair makes one Python step per output entry (about half a million
here), so each of its calls takes seconds; run.py times such slow calls three times
per sweep, not thirty. Compare a fast row with the naive row of the same size
for the speed-up.
"""

import numpy as np
import torch_ref
from common import Case

from bplib import conv

# (N, C, F, H = W), all with 3 x 3 kernels, stride 1, pad 1 ("same" size).
CONV_SIZES = [(32, 3, 16, 32), (64, 16, 32, 16)]


def _pair(op, label, forward, backward, *args, reference=None, **kwargs):
    out, cache = forward(*args, **kwargs)
    dout = np.random.default_rng(1).standard_normal(out.shape)
    return Case(op, label, lambda: forward(*args, **kwargs), lambda: backward(dout, cache), reference)


def _conv_cases(rng, N, C, F, H):
    x = rng.standard_normal((N, C, H, H))
    W = rng.standard_normal((F, C, 3, 3)) / np.sqrt(C * 9)
    b = rng.standard_normal(F)
    size = f"{N}x{C}x{H}x{H} -> {F} ch, 3x3"
    return [
        _pair("conv2d (fast)", size, conv.conv2d_forward, conv.conv2d_backward, x, W, b, stride=1, pad=1,
              reference=torch_ref.pair(torch_ref.fn("nn.functional.conv2d", padding=1), x, W, b)),
        _pair("conv2d (naive)", size, conv.conv2d_naive_forward, conv.conv2d_naive_backward, x, W, b, stride=1, pad=1),
    ]


def cases(rng):
    out = [case for sizes in CONV_SIZES for case in _conv_cases(rng, *sizes)]
    x = rng.standard_normal((32, 16, 32, 32))  # the output of the first conv
    for op, name, pair in [("maxpool 2x2", "max_pool2d", (conv.maxpool_forward, conv.maxpool_backward)),
                           ("avgpool 2x2", "avg_pool2d", (conv.avgpool_forward, conv.avgpool_backward))]:
        reference = torch_ref.pair(torch_ref.fn(f"nn.functional.{name}", kernel_size=2, stride=2), x)
        out.append(_pair(op, "32x16x32x32", *pair, x, size=2, stride=2, reference=reference))
    alpha, b = rng.standard_normal(16), rng.standard_normal(16)
    out.append(_pair("subsample 2x2", "32x16x32x32", conv.subsample_forward, conv.subsample_backward, x, alpha, b,
                     size=2, stride=2))
    return out
