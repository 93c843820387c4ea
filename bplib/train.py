"""A small training loop: minibatches, forward, backward, optimizer step (chapter 5).

``fit`` trains an ``nn.Module`` with a loss module (``forward(z, y) -> loss``,
``backward(dloss=1.0) -> dz``, as ``nn.HalfSquaredError``) and an optimizer
from ``bplib.optim``, and returns the history of every epoch. ``evaluate`` and
``accuracy`` run the model in evaluation mode (``model.eval()``) and put it
back in the mode it was in, whatever happens in between.

Labels for the accuracy are integer classes y (N,): the prediction is the
argmax of the model's output over its last axis, or, for a single output
column, whether the output (a logit) is positive. Targets of shape (N, K)
(one-hot rows, for a squared error) are turned into classes by their argmax.

Progress: ``fit(..., progress=True)`` rewrites one line of text per epoch
(epoch, loss, accuracies); it stays quiet by default and whenever the
environment variable CI is set, so that tests and CI logs stay clean.
"""

import os
import sys
from typing import NamedTuple

import numpy as np

from bplib import gradcheck, nn
from bplib._validate import as_float_array, check_int, check_rng


def _check_data(fn, x_name, x, y_name, y):
    x = as_float_array(fn, x_name, x)
    if x.ndim < 2:
        raise ValueError(f"{fn}: argument '{x_name}' must have a batch axis and a feature axis, got shape {x.shape}")
    if not isinstance(y, np.ndarray):
        raise TypeError(f"{fn}: argument '{y_name}' must be a numpy array, got {type(y).__name__}")
    if y.ndim == 0 or y.shape[0] != x.shape[0]:
        raise ValueError(f"{fn}: argument '{y_name}' has shape {y.shape} but '{x_name}' has shape {x.shape}; "
                         f"they must have the same number of examples N")
    return x, y


def _check_model(fn, model):
    if not isinstance(model, nn.Module):
        raise TypeError(f"{fn}: argument 'model' must be an nn.Module, got {type(model).__name__}")


def predict_classes(z):
    """The predicted class of each row: argmax over the last axis, or z > 0 for a single output column.

    Parameters: z, model outputs (N, K) or (N, 1). Returns: (N,) int64. Used in chapter 5.
    """
    z = as_float_array("predict_classes", "z", z, finite=False)  # a diverged model's NaNs are wrong answers
    if z.ndim < 2:
        raise ValueError(f"predict_classes: argument 'z' must have shape (N, K), got {z.shape}")
    if z.shape[-1] == 1:
        return (z[..., 0] > 0).astype(np.int64)
    return np.argmax(z, axis=-1)


def _labels(y):
    return np.argmax(y, axis=-1) if y.ndim == 2 and y.shape[1] > 1 else y.reshape(-1)


class _EvalMode:
    """Put a model in evaluation mode inside a with-block, and back in its old mode after."""

    def __init__(self, model):
        self.model, self.was_training = model, model.training

    def __enter__(self):
        self.model.eval()
        return self.model

    def __exit__(self, *exc):
        self.model.clear_cache()  # forward calls without backward calls leave caches behind
        self.model.train(self.was_training)
        return False


def _batches(n, batch_size):
    return [slice(i, min(i + batch_size, n)) for i in range(0, n, batch_size)]


def evaluate(model, loss_fn, x, y, *, batch_size=1024):
    """Mean loss and accuracy of ``model`` on (x, y), in evaluation mode; the mode is restored after.

    Parameters: model, an nn.Module; loss_fn, a loss module or None (then the
    loss is NaN); x (N, ...); y (N,) integer labels (or (N, K) targets); batch_size,
    how many examples go through at once. Returns: (loss, accuracy), two floats.
    Used in chapter 5.
    """
    _check_model("evaluate", model)
    x, y = _check_data("evaluate", "x", x, "y", y)
    batch_size = check_int("evaluate", "batch_size", batch_size, minimum=1)
    total, correct = 0.0, 0
    with _EvalMode(model):
        for s in _batches(x.shape[0], batch_size):
            z = model.forward(x[s])
            correct += int(np.sum(predict_classes(z) == _labels(y[s])))
            if loss_fn is not None:
                total += loss_fn.forward(z, y[s]) * z.shape[0]  # losses are batch means
                getattr(loss_fn, "clear_cache", lambda: None)()
    loss = total / x.shape[0] if loss_fn is not None else float("nan")
    return float(loss), correct / x.shape[0]


def accuracy(model, x, y):
    """The fraction of examples whose predicted class equals the label, in evaluation mode.

    Parameters: model, an nn.Module; x (N, ...); y (N,) integer labels.
    Returns: a float in [0, 1]. Used in chapter 5.
    """
    return evaluate(model, None, x, y)[1]


def train_step(model, loss_fn, optimizer, x, y):
    """One step of gradient descent on one minibatch: zero the gradients, forward, backward, update.

    Parameters: model, an nn.Module; loss_fn, a loss module; optimizer, e.g. optim.SGD;
    x (N, ...), y (N,) one minibatch (checked by the model and the loss).
    Returns: (loss, z), the minibatch loss (a float) and the model's output z (N, K).
    Used in chapter 5.
    """
    _check_parts("train_step", model, loss_fn, optimizer)
    model.zero_grad()
    z = model.forward(x)
    loss = loss_fn.forward(z, y)
    model.backward(loss_fn.backward(1.0))
    optimizer.step(model.params, model.grads)
    return loss, z


def _check_parts(fn, model, loss_fn, optimizer):
    _check_model(fn, model)
    for name, obj, method in (("loss_fn", loss_fn, "backward"), ("optimizer", optimizer, "step")):
        if not callable(getattr(obj, method, None)):
            raise TypeError(f"{fn}: argument '{name}' must have a '{method}' method, got {type(obj).__name__}")


def _check_fit(model, loss_fn, optimizer, epochs, batch_size, rng):
    _check_parts("fit", model, loss_fn, optimizer)
    check_int("fit", "epochs", epochs, minimum=1)
    check_int("fit", "batch_size", batch_size, minimum=1)
    check_rng("fit", "rng", rng)


def _progress_line(epoch, epochs, row):
    parts = [f"epoch {epoch}/{epochs}"] + [f"{k} {v[-1]:.4f}" for k, v in row.items() if v]
    sys.stdout.write("\r" + "  ".join(parts))
    sys.stdout.write("\n" if epoch == epochs else "")
    sys.stdout.flush()


def _train_epoch(model, loss_fn, optimizer, x, y, batch_size, rng):
    """One pass over (x, y) in an order drawn from rng: (mean loss, accuracy), each taken before its update."""
    order = rng.permutation(x.shape[0])
    total, correct = 0.0, 0
    for s in _batches(x.shape[0], batch_size):
        idx = order[s]
        loss, z = train_step(model, loss_fn, optimizer, x[idx], y[idx])
        total += loss * len(idx)  # losses are batch means
        correct += int(np.sum(predict_classes(z) == _labels(y[idx])))
    return total / x.shape[0], correct / x.shape[0]


def fit(model, loss_fn, optimizer, x, y, *, epochs, batch_size, rng, x_val=None, y_val=None, progress=None):
    """Train ``model`` by minibatch gradient descent and return the per-epoch history.

    Each epoch visits every example once, in an order drawn from ``rng``, in
    minibatches of ``batch_size`` (the last one may be smaller). The model is
    in training mode while it trains. Parameters: model, an nn.Module; loss_fn,
    a loss module; optimizer, e.g. optim.SGD; x (N, ...), y (N,) the training
    data; epochs, batch_size, positive integers; rng, a numpy Generator;
    x_val, y_val, optional held-out data (both or neither); progress, True for
    a progress line (ignored when the variable CI is set).
    Returns: a dict of lists with one entry per epoch: "loss" and "accuracy"
    (means over the epoch's minibatches, taken before each update), and
    "val_loss" and "val_accuracy" when validation data is given. Used in chapter 5.
    """
    _check_fit(model, loss_fn, optimizer, epochs, batch_size, rng)
    x, y = _check_data("fit", "x", x, "y", y)
    if (x_val is None) != (y_val is None):
        raise ValueError("fit: arguments 'x_val' and 'y_val' must be given together or not at all")
    if x_val is not None:
        x_val, y_val = _check_data("fit", "x_val", x_val, "y_val", y_val)
    history = {"loss": [], "accuracy": []} | ({"val_loss": [], "val_accuracy": []} if x_val is not None else {})
    show = bool(progress) and not os.environ.get("CI")
    model.train(True)
    for epoch in range(1, epochs + 1):
        loss, acc = _train_epoch(model, loss_fn, optimizer, x, y, batch_size, rng)
        history["loss"].append(loss)
        history["accuracy"].append(acc)
        if x_val is not None:
            val_loss, val_acc = evaluate(model, loss_fn, x_val, y_val)
            history["val_loss"].append(val_loss)
            history["val_accuracy"].append(val_acc)
        if show:
            _progress_line(epoch, epochs, history)
    return history


def numerical_param_grads(model, loss_fn, x, y, keys):
    """Central-difference gradients of the loss on (x, y) with respect to the named parameters.

    Each parameter is nudged in place and restored exactly; the model keeps
    no caches afterwards. This is the reference that a network's backward
    pass is checked against. Parameters: model, an nn.Module; loss_fn, a loss
    module; x (N, ...), y (N,) one batch; keys, names from ``model.params``.
    Returns: a dict from key to an array the shape of that parameter. Used from chapter 5 on.
    """
    fn = "numerical_param_grads"
    _check_model(fn, model)
    x, y = _check_data(fn, "x", x, "y", y)
    params = model.params
    missing = [k for k in keys if k not in params]
    if isinstance(keys, str) or missing:
        raise ValueError(f"{fn}: argument 'keys' must list names from model.params {sorted(params)}, got {keys!r}")

    def loss_at(key, value):
        saved = params[key].copy()
        params[key][...] = value
        try:
            return loss_fn.forward(model.forward(x), y)
        finally:
            params[key][...] = saved
            model.clear_cache()
            loss_fn.clear_cache()

    return {k: gradcheck.numerical_gradient(lambda v, k=k: loss_at(k, v), params[k]) for k in keys}


class SeedSummary(NamedTuple):
    """A result over several seeds: mean, sample standard deviation, lowest, highest, and the count."""

    mean: float
    std: float
    low: float
    high: float
    n: int

    def format(self, digits=3):
        """'mean +- std (low to high, n seeds)', each rounded to ``digits`` decimals."""
        d = digits
        return f"{self.mean:.{d}f} +- {self.std:.{d}f} ({self.low:.{d}f} to {self.high:.{d}f}, {self.n} seeds)"


def seed_summary(values):
    """Mean and spread of one result measured over several seeds.

    Parameters: values, a sequence of at least 2 finite numbers, one per seed.
    Returns: a SeedSummary (mean, std with 1 / (n - 1), low, high, n). Used from chapter 5 on.
    """
    v = as_float_array("seed_summary", "values", values, ndim=1)
    if v.shape[0] < 2:
        raise ValueError(f"seed_summary: argument 'values' needs at least 2 seeds to show a spread, got shape {v.shape}")
    return SeedSummary(float(v.mean()), float(v.std(ddof=1)), float(v.min()), float(v.max()), int(v.shape[0]))
