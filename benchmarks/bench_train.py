"""Benchmark case for training (chapter 5): one epoch of the digits MLP, forward passes against backward passes.

The forward column is the forward passes of one epoch (model and loss on
every minibatch, 64-128-10 ReLU network, minibatches of 32 of the 1348
training images); the backward column is the backward passes of the same
epoch, run on the caches that those forward passes left. The optimizer steps
are not in either column; a whole epoch costs about forward + backward plus
one small step per minibatch.
"""

from common import Case

from bplib import data, nn


def _epoch_case(rng, hidden=128, batch_size=32):
    x, y, _, _ = data.load_digits_split(0)
    model = nn.Sequential(nn.Linear(64, hidden, rng), nn.ReLU(), nn.Linear(hidden, 10, rng))
    loss_fn = nn.SoftmaxCrossEntropy()
    batches = [rng.permutation(len(y))[i:i + batch_size] for i in range(0, len(y), batch_size)]
    modules = model.modules + [loss_fn]

    def run_forwards():
        for idx in batches:
            loss_fn.forward(model.forward(x[idx]), y[idx])

    def forward():
        run_forwards()
        model.clear_cache()
        loss_fn.clear_cache()

    run_forwards()
    saved = [list(m._caches) for m in modules]  # the caches of one epoch's forward passes
    model.clear_cache()
    loss_fn.clear_cache()

    def backward():
        for m, caches in zip(modules, saved):
            m._caches[:] = caches
        for _ in batches:  # the stacks pop the last minibatch first
            model.backward(loss_fn.backward(1.0))

    return Case("mlp epoch (digits)", f"{len(batches)} batches of {batch_size}, 64-{hidden}-10", forward, backward)


def cases(rng):
    return [_epoch_case(rng)]
