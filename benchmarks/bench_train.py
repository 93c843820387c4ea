"""Benchmark case for training (chapter 5): one epoch of the digits MLP, forward passes against backward passes.

The forward column is the forward passes of one epoch (model and loss on
every minibatch, 64-128-10 ReLU network, minibatches of 32 of the 1079
training images of the three-way split); the backward column is the backward passes of the same
epoch, run on the caches that those forward passes left. The optimizer steps
are not in either column; a whole epoch costs about forward + backward plus
one small step per minibatch.

``extras`` adds one wall-clock measurement that is not a forward/backward
pair: the time a digits MLP (SGD with momentum) takes to first reach 95%
validation accuracy, epoch by epoch (the validation part is evaluated after
each epoch, and that evaluation is not counted; the test part is never read).
"""

import time

import numpy as np
from common import Case

from bplib import data, nn, optim, train


def _epoch_case(rng, hidden=128, batch_size=32):
    x, y = data.load_digits_splits(0)[:2]
    model = nn.Sequential(nn.Linear(64, hidden, rng), nn.ReLU(), nn.Linear(hidden, 10, rng))
    loss_fn = nn.SoftmaxCrossEntropy()
    order = rng.permutation(len(y))
    batches = [order[i:i + batch_size] for i in range(0, len(y), batch_size)]
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


def _time_to_accuracy(target=0.95, max_epochs=60):
    """Seconds of training until the validation accuracy first reaches ``target``: chapter 5's network, optimizer
    and seeds, default init. The test part of the split is not looked at."""
    x, y, x_val, y_val = data.load_digits_splits(0)[:4]
    rng = np.random.default_rng(1)
    model = nn.Sequential(nn.Linear(64, 128, rng), nn.ReLU(), nn.Linear(128, 10, rng))
    opt = optim.SGD(lr=0.1, momentum=0.9, weight_decay=1e-4)
    loss_fn, fit_rng, seconds = nn.SoftmaxCrossEntropy(), np.random.default_rng(2), 0.0
    for epoch in range(1, max_epochs + 1):
        start = time.perf_counter()
        train.fit(model, loss_fn, opt, x, y, epochs=1, batch_size=32, rng=fit_rng)
        seconds += time.perf_counter() - start
        accuracy = train.accuracy(model, x_val, y_val)
        if accuracy >= target:
            return seconds, f"epoch {epoch}, {accuracy:.4f}"
    return float("nan"), f"not reached in {max_epochs} epochs"


def extras(rng):
    seconds, note = _time_to_accuracy()
    return [("time to 95% validation accuracy (digits MLP)", "64-128-10, SGD + momentum, batch 32", seconds, note)]
