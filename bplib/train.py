"""A small training loop: minibatches, forward, backward, optimizer step (chapter 5).

``fit`` trains an ``nn.Module`` with a loss module (``forward(z, y) -> loss``,
``backward(dloss=1.0) -> dz``, as ``nn.HalfSquaredError``) and an optimizer
from ``bplib.optim``, and returns the history of every epoch. It can validate
after every epoch, step a learning-rate scheduler, and stop early when the
validation loss stops improving, keeping the parameters of the best epoch.
``evaluate`` and ``accuracy`` run the model in evaluation mode
(``model.eval()``) and put it back in the mode it was in, whatever happens in
between.

Labels for the accuracy are integer classes y (N,) in [0, K): the prediction
is the argmax of the model's output over its last axis, or, for a single
output column, whether the output (a logit) is positive (then K = 2). Float
targets of shape (N, K) (one-hot rows, for a squared error) are turned into
classes by their argmax.

Progress: ``fit(..., progress=True)`` rewrites one line of text per epoch
(epoch, loss, accuracies); it stays quiet by default and whenever the
environment variable CI is set, so that tests and CI logs stay clean.

Helpers for the chapters: ``numerical_param_grads`` (the reference a
network's backward pass is checked against) and ``seed_summary`` (a result
over several seeds as mean and spread).
"""

import os
import sys
from typing import NamedTuple

import numpy as np

from bplib import gradcheck, nn
from bplib._validate import as_float_array, check_int, check_rng


def _check_data(fn, x_name, x, y_name, y):
    x = np.asarray(as_float_array(fn, x_name, x))  # a plain ndarray: np.matrix breaks reductions
    if x.ndim < 2:
        raise ValueError(f"{fn}: argument '{x_name}' must have a batch axis and a feature axis, got shape {x.shape}")
    if x.shape[0] == 0:
        raise ValueError(f"{fn}: argument '{x_name}' holds no examples (shape {x.shape}); N must be at least 1")
    if not isinstance(y, np.ndarray):
        raise TypeError(f"{fn}: argument '{y_name}' must be a numpy array, got {type(y).__name__}")
    if y.dtype.kind not in "biuf":
        raise TypeError(f"{fn}: argument '{y_name}' must hold integer labels or float targets, got dtype {y.dtype}")
    if y.ndim == 0 or y.shape[0] != x.shape[0]:
        raise ValueError(f"{fn}: argument '{y_name}' has shape {y.shape} but '{x_name}' has shape {x.shape}; "
                         f"they must have the same number of examples N")
    if y.dtype.kind == "f" and not np.all(np.isfinite(y)):
        raise ValueError(f"{fn}: argument '{y_name}' contains NaN or infinity")
    return x, np.asarray(y)


def _check_model(fn, model):
    if not isinstance(model, nn.Module):
        raise TypeError(f"{fn}: argument 'model' must be an nn.Module, got {type(model).__name__}")


def _check_loss(fn, loss_fn, *, optional=False):
    if optional and loss_fn is None:
        return
    for method in ("forward", "backward"):
        if not callable(getattr(loss_fn, method, None)):
            what = "a loss module (such as nn.SoftmaxCrossEntropy())" + (" or None" if optional else "")
            raise TypeError(f"{fn}: argument 'loss_fn' must be {what} with a '{method}' method, got {type(loss_fn).__name__}")


def predict_classes(z):
    """The predicted class of each row: argmax over the last axis, or z > 0 for a single output column.

    Parameters: z, model outputs (N, K) or (N, 1), K >= 1. Returns: (N,) int64. Used in chapter 5.
    """
    return _predict("predict_classes", z)


def _predict(fn, z):
    z = np.asarray(as_float_array(fn, "z", z, finite=False))  # a diverged model's NaNs are wrong answers
    if z.ndim < 2 or z.shape[-1] == 0:
        raise ValueError(f"{fn}: the model's output 'z' must have shape (N, K) with K >= 1, got {z.shape}")
    if z.shape[-1] == 1:
        return (z[..., 0] > 0).astype(np.int64)
    return np.argmax(z, axis=-1)


def _classes(y):
    return np.argmax(y, axis=-1) if y.ndim == 2 and y.shape[1] > 1 else y.reshape(-1)


def _labels(fn, y, K):
    """Integer classes from labels (N,) or float targets (N, K); labels must lie in [0, K)."""
    if y.ndim == 2 and y.shape[1] > 1:
        if y.shape[1] != K:
            raise ValueError(f"{fn}: targets 'y' have {y.shape[1]} columns but the model has {K} outputs")
        return np.argmax(y, axis=-1)
    y = y.reshape(-1)
    if y.size and (y.min() < 0 or y.max() >= K or (y.dtype.kind == "f" and np.any(y != np.round(y)))):
        raise ValueError(f"{fn}: labels 'y' must be whole numbers in [0, {K}) for a model with {K} classes, "
                         f"got values from {y.min()} to {y.max()}")
    return y


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


def _n_correct(fn, z, y):
    pred = _predict(fn, z)
    K = 2 if z.shape[-1] == 1 else z.shape[-1]
    labels = _labels(fn, y, K)
    if labels.shape != pred.shape:
        raise ValueError(f"{fn}: the model's output has shape {z.shape}, which gives predictions of shape {pred.shape}, "
                         f"but the labels have shape {y.shape}")
    return int(np.sum(pred == labels))


def _evaluate(fn, model, loss_fn, x, y, batch_size):
    _check_model(fn, model)
    _check_loss(fn, loss_fn, optional=True)
    x, y = _check_data(fn, "x", x, "y", y)
    batch_size = check_int(fn, "batch_size", batch_size, minimum=1)
    total, correct = 0.0, 0
    with _EvalMode(model):
        for s in _batches(x.shape[0], batch_size):
            z = model.forward(x[s])
            correct += _n_correct(fn, z, y[s])
            if loss_fn is not None:
                total += loss_fn.forward(z, y[s]) * z.shape[0]  # losses are batch means
                getattr(loss_fn, "clear_cache", lambda: None)()
    loss = total / x.shape[0] if loss_fn is not None else float("nan")
    return float(loss), correct / x.shape[0]


def evaluate(model, loss_fn, x, y, *, batch_size=1024):
    """Mean loss and accuracy of ``model`` on (x, y), in evaluation mode; the mode is restored after.

    Parameters: model, an nn.Module; loss_fn, a loss module or None (then the
    loss is NaN); x (N, ...) with N >= 1; y (N,) integer labels in [0, K) (or
    (N, K) targets); batch_size, how many examples go through at once.
    Returns: (loss, accuracy), two floats. Used in chapter 5.
    """
    return _evaluate("evaluate", model, loss_fn, x, y, batch_size)


def accuracy(model, x, y, *, batch_size=1024):
    """The fraction of examples whose predicted class equals the label, in evaluation mode.

    Parameters: model, an nn.Module; x (N, ...) with N >= 1; y (N,) integer
    labels in [0, K). Returns: a float in [0, 1]. Used in chapter 5.
    """
    return _evaluate("accuracy", model, None, x, y, batch_size)[1]


def train_step(model, loss_fn, optimizer, x, y):
    """One minibatch step: zero the gradients, forward, backward, update.

    Parameters: model, an nn.Module; loss_fn, a loss module; optimizer,
    e.g. optim.SGD; x (N, ...), y (N,) one minibatch with N >= 1.
    Returns: (loss, z), the minibatch loss (a float) and the model's
    output z (N, K). Used in chapter 5.
    """
    _check_parts("train_step", model, loss_fn, optimizer)
    x, y = _check_data("train_step", "x", x, "y", y)
    return _step(model, loss_fn, optimizer, x, y)


def _step(model, loss_fn, optimizer, x, y):
    model.zero_grad()
    z = model.forward(x)
    loss = loss_fn.forward(z, y)
    model.backward(loss_fn.backward(1.0))
    optimizer.step(model.params, model.grads)
    return loss, z


def _check_parts(fn, model, loss_fn, optimizer):
    _check_model(fn, model)
    _check_loss(fn, loss_fn)
    if not callable(getattr(optimizer, "step", None)):
        raise TypeError(f"{fn}: argument 'optimizer' must have a 'step' method, got {type(optimizer).__name__}")


def _check_fit(model, loss_fn, optimizer, epochs, batch_size, rng, scheduler, patience, has_val):
    _check_parts("fit", model, loss_fn, optimizer)
    check_int("fit", "epochs", epochs, minimum=1)
    check_int("fit", "batch_size", batch_size, minimum=1)
    check_rng("fit", "rng", rng)
    if scheduler is not None and not callable(getattr(scheduler, "step", None)):
        raise TypeError(f"fit: argument 'scheduler' must be None or have a 'step' method (optim.StepLR, optim.CosineLR), "
                        f"got {type(scheduler).__name__}")
    if scheduler is not None and not hasattr(optimizer, "lr"):
        raise TypeError(f"fit: a scheduler needs an optimizer with an 'lr' attribute, got {type(optimizer).__name__}")
    if patience is not None:
        check_int("fit", "patience", patience, minimum=1)
        if not has_val:
            raise ValueError("fit: argument 'patience' (early stopping) needs validation data 'x_val' and 'y_val'")


def _progress_line(epoch, epochs, history):
    parts = [f"epoch {epoch}/{epochs}"] + [f"{k} {v[-1]:.4f}" for k, v in history.items() if isinstance(v, list) and v]
    sys.stdout.write("\r" + "  ".join(parts))
    sys.stdout.write("\n" if epoch == epochs else "")
    sys.stdout.flush()


def _train_epoch(model, loss_fn, optimizer, x, y, batch_size, rng):
    """One pass over (x, y) in an order drawn from rng: (mean loss, accuracy), each taken before its update."""
    order = rng.permutation(x.shape[0])
    total, correct = 0.0, 0
    for s in _batches(x.shape[0], batch_size):
        idx = order[s]
        loss, z = _step(model, loss_fn, optimizer, x[idx], y[idx])
        total += loss * len(idx)  # losses are batch means
        correct += int(np.sum(_predict("fit", z) == _classes(y[idx])))  # the loss has checked the labels
    return total / x.shape[0], correct / x.shape[0]


class _Best:
    """Early stopping: the lowest validation loss so far, its epoch and a copy of the parameters then."""

    def __init__(self, patience):
        self.patience, self.loss, self.epoch, self.params = patience, np.inf, 0, None

    def update(self, model, epoch, val_loss):
        """Record an improvement; return True when training should stop."""
        if val_loss < self.loss:  # NaN never improves
            self.loss, self.epoch = val_loss, epoch
            self.params = {k: p.copy() for k, p in model.params.items()}
        return epoch - self.epoch >= self.patience

    def restore(self, model):
        if self.params is not None:
            for k, p in model.params.items():
                p[...] = self.params[k]  # in place: the module's own arrays


def fit(model, loss_fn, optimizer, x, y, *, epochs, batch_size, rng, x_val=None, y_val=None,
        scheduler=None, patience=None, progress=None):
    """Train ``model`` by minibatch gradient descent and return the per-epoch history.

    Each epoch visits every example once, in an order drawn from ``rng``, in
    minibatches of ``batch_size`` (the last one may be smaller). The model is
    in training mode while it trains. Parameters: model, an nn.Module; loss_fn,
    a loss module; optimizer, e.g. optim.SGD; x (N, ...), y (N,) the training
    data, N >= 1; epochs, batch_size, positive integers (epochs is the most
    that will run); rng, a numpy Generator; x_val, y_val, optional held-out
    data (both or neither), evaluated after every epoch; scheduler, e.g.
    optim.StepLR, whose ``step()`` is called after every epoch; patience, for
    early stopping: stop once the validation loss has not improved for this many
    epochs, and put back the parameters of the epoch with the lowest validation
    loss (arrays outside ``model.params``, such as batch norm's running
    statistics, are not put back); progress, True for a progress line (ignored
    when the variable CI is set).
    Returns: a dict of lists with one entry per epoch run: "loss" and "accuracy"
    (means over the epoch's minibatches, taken before each update), "val_loss"
    and "val_accuracy" with validation data, "lr" (the rate used in the epoch)
    with a scheduler; and with patience, "best_epoch", the epoch (from 1) whose
    parameters the model holds at the end. Used in chapter 5.
    """
    has_val = x_val is not None or y_val is not None
    _check_fit(model, loss_fn, optimizer, epochs, batch_size, rng, scheduler, patience, has_val)
    x, y = _check_data("fit", "x", x, "y", y)
    if (x_val is None) != (y_val is None):
        raise ValueError("fit: arguments 'x_val' and 'y_val' must be given together or not at all")
    if has_val:
        x_val, y_val = _check_data("fit", "x_val", x_val, "y_val", y_val)
    history = {"loss": [], "accuracy": []} | ({"val_loss": [], "val_accuracy": []} if has_val else {})
    history |= {"lr": []} if scheduler is not None else {}
    best = _Best(patience) if patience is not None else None
    show = bool(progress) and not os.environ.get("CI")
    model.train(True)
    for epoch in range(1, epochs + 1):
        if scheduler is not None:
            history["lr"].append(float(optimizer.lr))
        loss, acc = _train_epoch(model, loss_fn, optimizer, x, y, batch_size, rng)
        history["loss"].append(loss)
        history["accuracy"].append(acc)
        stop = False
        if has_val:
            val_loss, val_acc = _evaluate("fit", model, loss_fn, x_val, y_val, 1024)
            history["val_loss"].append(val_loss)
            history["val_accuracy"].append(val_acc)
            stop = best is not None and best.update(model, epoch, val_loss)
        if scheduler is not None:
            scheduler.step()
        if show:
            _progress_line(epoch if not stop else epochs, epochs, history)
        if stop:
            break
    if best is not None:
        best.restore(model)
        history["best_epoch"] = best.epoch
    return history


def numerical_param_grads(model, loss_fn, x, y, keys):
    """Central-difference gradients of the loss on (x, y) with respect to the named parameters.

    Each float64 parameter is nudged in place and restored exactly; the model
    keeps no caches afterwards (any it held before are forgotten). This is the
    reference that a network's backward pass is checked against. Parameters:
    model, an nn.Module with float64 parameters (float32 is too coarse for
    central differences and is refused); loss_fn, a loss module; x (N, ...),
    y (N,) one batch; keys, a list of names from ``model.params``.
    Returns: a dict from key to an array the shape of that parameter. Used from chapter 5 on.
    """
    fn = "numerical_param_grads"
    _check_model(fn, model)
    _check_loss(fn, loss_fn)
    x, y = _check_data(fn, "x", x, "y", y)
    params = model.params
    if isinstance(keys, str) or not hasattr(keys, "__iter__"):
        raise TypeError(f"{fn}: argument 'keys' must be a list of names from model.params {sorted(params)}, got {keys!r}")
    keys = list(keys)
    missing = [k for k in keys if k not in params]
    if missing:
        raise ValueError(f"{fn}: argument 'keys' must list names from model.params {sorted(params)}; not found: {missing}")
    for k in keys:
        if params[k].dtype != np.float64:
            raise TypeError(f"{fn}: params['{k}'] has dtype {params[k].dtype}; central differences need float64 parameters")

    def loss_at(key, value):
        saved = params[key].copy()
        params[key][...] = value
        try:
            return loss_fn.forward(model.forward(x), y)
        finally:
            params[key][...] = saved
            model.clear_cache()
            getattr(loss_fn, "clear_cache", lambda: None)()

    return {k: gradcheck.numerical_gradient(lambda v, k=k: loss_at(k, v), params[k]) for k in keys}


class SeedSummary(NamedTuple):
    """A result over several seeds: mean, sample standard deviation, lowest, highest, and the count."""

    mean: float
    std: float
    low: float
    high: float
    n: int

    def format(self, digits=3):
        """'mean +- std (low to high, n seeds)', each rounded to ``digits`` decimals (0 to 15)."""
        d = check_int("SeedSummary.format", "digits", digits, minimum=0)
        if d > 15:
            raise ValueError(f"SeedSummary.format: argument 'digits' must be at most 15, got {d}")
        return f"{self.mean:.{d}f} +- {self.std:.{d}f} ({self.low:.{d}f} to {self.high:.{d}f}, {self.n} seeds)"


def seed_summary(values):
    """Mean and spread of one result measured over several seeds.

    Parameters: values, a sequence of at least 2 finite numbers, one per seed.
    Returns: a SeedSummary (mean, std with 1 / (n - 1), low, high, n), finite
    for any finite values (they are scaled by the largest before summing). Used from chapter 5 on.
    """
    v = as_float_array("seed_summary", "values", values, ndim=1).astype(np.float64)
    if v.shape[0] < 2:
        raise ValueError(f"seed_summary: argument 'values' needs at least 2 seeds to show a spread, got shape {v.shape}")
    scale = float(np.max(np.abs(v))) or 1.0  # values near 1e308 would overflow their sum
    u = v / scale
    return SeedSummary(float(scale * u.mean()), float(scale * u.std(ddof=1)), float(v.min()), float(v.max()), int(v.shape[0]))
