"""Benchmark cases for the tape (chapter 10): the same MLP and loss through bplib.autodiff and through nn,
and the second-order products of the tape.

The first two cases run a 784-256-10 ReLU network with softmax cross-entropy on
a minibatch of 64. "mlp via tape": forward builds a new tape and records the
pass; backward replays one recorded tape. "mlp via nn": forward and backward
of nn.Sequential and nn.SoftmaxCrossEntropy on the same parameters. The two
compute the same gradients with the same pairs, so the difference between the
rows is the cost of the tape's bookkeeping.

The "tape: ..." cases use the same sizes with tanh, whose second derivative is
not zero. Each records the forward pass as "forward", and times as "backward"
what is computed from the recorded tape: the gradient, a Hessian-vector product
forward over reverse, the same reverse over reverse (the reverse sweep recorded
on a second tape and reversed), and a Gauss-Newton-vector product. The ratio
column is then each product's cost in forward passes.
"""

from common import Case

from bplib import nn
from bplib.autodiff import Tape


def _problem(rng, n, sizes):
    model = nn.Sequential(nn.Linear(sizes[0], sizes[1], rng), nn.ReLU(), nn.Linear(sizes[1], sizes[2], rng))
    return model, rng.standard_normal((n, sizes[0])), rng.integers(0, sizes[2], n)


def _tape_case(rng, n, sizes):
    model, x, y = _problem(rng, n, sizes)
    params = model.params

    def forward():
        tape = Tape()
        P = {k: tape.input(v, k) for k, v in params.items()}
        h = tape.apply("relu", tape.apply("linear", tape.input(x, "x"), P["0.W"], P["0.b"]))
        z = tape.apply("linear", h, P["2.W"], P["2.b"])
        return tape, tape.apply("softmax_cross_entropy", z, y=y)

    tape, loss = forward()
    return Case("mlp via tape", f"N={n}, " + "-".join(map(str, sizes)), forward, lambda: tape.backward(loss))


def _nn_case(rng, n, sizes):
    model, x, y = _problem(rng, n, sizes)
    loss_fn = nn.SoftmaxCrossEntropy()
    modules = model.modules + [loss_fn]

    def forward():
        loss_fn.forward(model.forward(x), y)
        model.clear_cache()
        loss_fn.clear_cache()

    loss_fn.forward(model.forward(x), y)
    saved = [list(m._caches) for m in modules]  # the caches of one forward pass

    def backward():
        for m, caches in zip(modules, saved):
            m._caches[:] = caches
        model.backward(loss_fn.backward(1.0))

    return Case("mlp via nn", f"N={n}, " + "-".join(map(str, sizes)), forward, backward)


def _second_order_cases(rng, n, sizes):
    model = nn.Sequential(nn.Linear(sizes[0], sizes[1], rng), nn.Tanh(), nn.Linear(sizes[1], sizes[2], rng))
    params, x, y = model.params, rng.standard_normal((n, sizes[0])), rng.integers(0, sizes[2], n)
    v = {k: rng.standard_normal(p.shape) for k, p in params.items()}

    def forward():
        tape = Tape()
        P = {k: tape.input(p, k) for k, p in params.items()}
        h = tape.apply("tanh", tape.apply("linear", tape.input(x, "x"), P["0.W"], P["0.b"]))
        return tape, tape.apply("softmax_cross_entropy", tape.apply("linear", h, P["2.W"], P["2.b"]), y=y)

    tape, loss = forward()
    size = f"N={n}, " + "-".join(map(str, sizes)) + " tanh"
    return [Case("tape: gradient", size, forward, lambda: tape.backward(loss)),
            Case("tape: Hv, forward over reverse", size, forward, lambda: tape.hvp(loss, v)),
            Case("tape: Hv, reverse over reverse", size, forward,
                 lambda: tape.hvp(loss, v, mode="reverse-over-reverse")),
            Case("tape: Gauss-Newton product", size, forward, lambda: tape.gvp(loss, v))]


def cases(rng):
    return [_tape_case(rng, 64, (784, 256, 10)), _nn_case(rng, 64, (784, 256, 10))] + _second_order_cases(rng, 64, (784, 256, 10))
