"""Optimizers and learning-rate schedules: what to do with a gradient once backprop has computed it (chapter 5).

An optimizer works on two dicts with the same keys: ``params`` maps each name
to a parameter array and ``grads`` maps it to the gradient of the loss with
respect to that array, of the same shape (``nn.Module.params`` and
``nn.Module.grads`` are such dicts). ``step(params, grads)`` updates the arrays
of ``params`` IN PLACE, so that a module whose dict this is sees the new
values; it never changes ``grads``. State that outlives a step (momentum's
velocity v, Adam's moments m and r) is kept inside the optimizer, one entry per
name, in ``optimizer.state``.

A step is all or nothing. It checks every parameter, gradient and state and
computes every new value before it writes any; if one of them is wrong (a
wrong shape, NaN in a gradient, a result that overflows), it raises and
nothing has changed. The arithmetic is float64: a float32 parameter receives
the float64 result rounded to float32, and a result beyond float32's range is
refused rather than stored as infinity. float16 is refused, as everywhere in
bplib.

Weight decay with coefficient lambda adds the gradient of (lambda / 2) ||w||^2,
which is lambda w, to a parameter's gradient before the update (L2
regularisation). ``decay_mask`` chooses which parameters decay: all of them
(None), or those for which a function of (name, array) returns True;
``weights_only`` spares the biases.

A scheduler changes ``optimizer.lr`` once per epoch: ``StepLR`` multiplies it
by ``gamma`` every ``step_size`` epochs, ``CosineLR`` lowers it along half a
cosine. Call ``scheduler.step()`` after each epoch (``train.fit`` does, when
given ``scheduler=``), as with PyTorch's ``torch.optim.lr_scheduler``.
"""

import math

import numpy as np

from bplib._validate import FLOAT_DTYPES, as_float_array, check_int, check_real


def weights_only(name, p):
    """Decay arrays of two or more dimensions (weights); spare the biases.

    A ``decay_mask`` for SGD and Adam: weight matrices and convolution
    kernels decay, vectors (biases, batch norm's gamma and beta) do not.
    Parameters: name, the parameter's key; p, its array.
    Returns: True when p.ndim >= 2. Used in chapter 5.
    """
    return p.ndim >= 2


def _check_dicts(fn, params, grads):
    """Check both dicts; return [(key, p, g)] with g a float64 array. Nothing is changed here."""
    for name, d in (("params", params), ("grads", grads)):
        if not isinstance(d, dict):
            raise TypeError(f"{fn}: argument '{name}' must be a dict from name to array, got {type(d).__name__}")
    if set(params) != set(grads):
        missing, extra = sorted(map(str, set(params) - set(grads))), sorted(map(str, set(grads) - set(params)))
        raise ValueError(f"{fn}: 'params' and 'grads' must have the same keys; missing from grads: {missing}, not in params: {extra}")
    items = []
    for key, p in params.items():
        if not isinstance(p, np.ndarray) or p.dtype not in FLOAT_DTYPES:
            kind = p.dtype if isinstance(p, np.ndarray) else type(p).__name__
            raise TypeError(f"{fn}: params['{key}'] must be a float32 or float64 numpy array (it is updated in place), got {kind}")
        if not p.flags.writeable:
            raise ValueError(f"{fn}: params['{key}'] is read-only, so it cannot be updated in place")
        g = as_float_array(fn, f"grads['{key}']", grads[key])
        if g.shape != p.shape:
            raise ValueError(f"{fn}: params['{key}'] has shape {p.shape} but grads['{key}'] has shape {g.shape}; they must match")
        items.append((key, np.asarray(p), np.asarray(g, dtype=np.float64)))  # plain ndarrays: views of the same memory
    _check_no_sharing(fn, items)
    return items


def _check_no_sharing(fn, items):
    # Two names for one array would update it twice (Sequential lists a shared module once).
    for i, (ka, a, _) in enumerate(items):
        for kb, b, _ in items[i + 1:]:
            if np.may_share_memory(a, b) and np.shares_memory(a, b):
                raise ValueError(f"{fn}: params['{ka}'] and params['{kb}'] share memory, so one step would update it twice")


def _all_finite(a):
    with np.errstate(over="ignore", invalid="ignore"):  # a sum of huge finite entries may overflow
        return math.isfinite(a.sum()) or bool(np.isfinite(a).all())  # the cheap reduction first


def _check_result(fn, key, dtype, w, state, watch):
    """Refuse a new parameter, or a watched state array, that is not finite in float64 or does not fit the parameter's dtype."""
    for name, arr in [("the updated parameter", w)] + [(f"its state '{k}'", state[k]) for k in watch]:
        if not _all_finite(arr):
            raise ValueError(f"{fn}: {name} for params['{key}'] overflows float64 (the gradient or a hyper-parameter is "
                             f"too large); nothing was updated")
    if dtype != np.float64:
        biggest = float(np.abs(w).max(initial=0.0))
        if biggest > float(np.finfo(dtype).max):
            raise ValueError(f"{fn}: the updated params['{key}'] does not fit in {np.dtype(dtype)} (largest |value| {biggest:.3g}); "
                             f"nothing was updated")


class Optimizer:
    """Base class: validation, weight decay, all-or-nothing steps and per-name state (chapter 5).

    Subclasses define ``_update(state, g) -> (delta, new_state)``, a pure function:
    the new parameter is w - delta, computed in float64. ``_watch`` names the state
    arrays that can overflow while delta stays finite (Adam's r = E[g^2]); any other
    overflow makes delta, and so the new parameter, infinite, which is refused.
    """

    _watch = ()

    def __init__(self, lr, weight_decay=0.0, decay_mask=None):
        self.lr = lr
        self.weight_decay = check_real(type(self).__name__, "weight_decay", weight_decay, low=0)
        if decay_mask is not None and not callable(decay_mask):
            raise TypeError(f"{type(self).__name__}: argument 'decay_mask' must be None or a function (name, array) -> bool, "
                            f"got {type(decay_mask).__name__}")
        self.decay_mask = decay_mask
        self.state = {}  # name -> dict of arrays (and Adam's step count), created at the first step that sees the name

    @property
    def lr(self):
        """The learning rate eta > 0; a scheduler (or you) may change it between steps."""
        return self._lr

    @lr.setter
    def lr(self, value):
        self._lr = check_real(type(self).__name__, "lr", value, low=0, low_open=True)

    def step(self, params, grads):
        """Update every array of ``params`` in place from ``grads`` (same keys, same shapes), or change nothing and raise."""
        fn = f"{type(self).__name__}.step"
        updates = []
        for key, p, g in _check_dicts(fn, params, grads):
            with np.errstate(over="ignore", invalid="ignore"):  # an overflow is refused just below
                if self.weight_decay and self._decays(fn, key, p):
                    g = g + self.weight_decay * p  # d/dw (lambda/2 ||w||^2) = lambda w
                delta, new_state = self._update(self._state_for(fn, key, p), g)
                w = p - delta  # float64, since delta is
            _check_result(fn, key, p.dtype, w, new_state, self._watch)
            updates.append((key, p, w, new_state))
        for key, p, w, new_state in updates:  # every check has passed: now write
            p[...] = w
            self.state[key] = new_state

    def reset(self):
        """Forget every velocity or moment estimate, as if no step had been taken."""
        self.state.clear()

    def _decays(self, fn, key, p):
        if self.decay_mask is None:
            return True
        answer = self.decay_mask(key, p)
        if not isinstance(answer, (bool, np.bool_)):
            raise TypeError(f"{fn}: decay_mask('{key}', array) must return a bool, got {type(answer).__name__}")
        return bool(answer)

    def _state_for(self, fn, key, p):
        s = self.state.get(key, {})
        for arr in s.values():
            if isinstance(arr, np.ndarray) and arr.shape != p.shape:
                raise ValueError(f"{fn}: params['{key}'] has shape {p.shape}, but the state kept for it "
                                 f"has shape {arr.shape}; call reset() before reusing an optimizer on new parameters")
        return s

    def _update(self, s, g):
        raise NotImplementedError


class SGD(Optimizer):
    """SGD with optional momentum: v <- mu v + g, w <- w - lr v.

    With momentum mu = 0 this is w <- w - lr g. The velocity v starts at
    zero, one array per parameter (``state[name]["v"]``).
    Parameters: lr > 0, the learning rate; momentum in [0, 1);
    weight_decay >= 0, the L2 coefficient lambda (adds lambda w to g);
    decay_mask, None (every parameter decays) or a function
    (name, array) -> bool such as ``weights_only``.
    ``step(params, grads)`` updates params in place, all or nothing.
    Derived in chapter 5; momentum after Polyak (1964).
    """

    def __init__(self, lr, momentum=0.0, weight_decay=0.0, decay_mask=None):
        super().__init__(lr, weight_decay, decay_mask)
        self.momentum = check_real("SGD", "momentum", momentum,
                                   low=0, high=1, high_open=True)

    def _update(self, s, g):
        if not self.momentum:
            return self.lr * g, {}
        # v_t = mu v_{t-1} + g_t: an exponentially weighted sum of gradients
        v = self.momentum * s.get("v", 0.0) + g
        return self.lr * v, {"v": v}


class Adam(Optimizer):
    """Adam: m <- b1 m + (1-b1) g, r <- b2 r + (1-b2) g^2, w <- w - lr m_hat / (sqrt(r_hat) + eps).

    m_hat = m / (1 - b1^t) and r_hat = r / (1 - b2^t) undo the bias of moment
    estimates that start at zero; t counts the steps taken for each name
    (``state[name]`` holds "m", "r" and "t"). Parameters: lr > 0; beta1,
    beta2 in [0, 1); eps > 0; weight_decay >= 0 (the L2 gradient lambda w is
    added to g, as PyTorch's torch.optim.Adam does, not decoupled as in AdamW);
    decay_mask as for SGD. A gradient entry above about 1e154 makes g^2
    overflow float64 and is refused. ``step(params, grads)`` updates params in
    place, all or nothing. Derived in chapter 5, after Kingma and Ba (2015).
    """

    _watch = ("r",)  # g^2 overflows near |g| = 1e154, and then m_hat / sqrt(r_hat) would be 0

    def __init__(self, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0, decay_mask=None):
        super().__init__(lr, weight_decay, decay_mask)
        self.beta1 = check_real("Adam", "beta1", beta1, low=0, high=1, high_open=True)
        self.beta2 = check_real("Adam", "beta2", beta2, low=0, high=1, high_open=True)
        self.eps = check_real("Adam", "eps", eps, low=0, low_open=True)

    def _update(self, s, g):
        t = s.get("t", 0) + 1
        m = self.beta1 * s.get("m", 0.0) + (1.0 - self.beta1) * g
        r = self.beta2 * s.get("r", 0.0) + (1.0 - self.beta2) * (g * g)
        m_hat = m / (1.0 - self.beta1**t)  # E[m_t] = (1 - b1^t) g for a steady gradient g
        r_hat = r / (1.0 - self.beta2**t)
        return self.lr * m_hat / (np.sqrt(r_hat) + self.eps), {"m": m, "r": r, "t": t}


class _Scheduler:
    """Base class: remembers the optimizer's starting rate and sets ``optimizer.lr = lr_at(epoch)`` on each step."""

    def __init__(self, optimizer):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(self).__name__}: argument 'optimizer' must be an optim.SGD or optim.Adam, "
                            f"got {type(optimizer).__name__}")
        self.optimizer, self.base_lr, self.epoch = optimizer, optimizer.lr, 0

    def step(self):
        """Count one more finished epoch and set the optimizer's rate for the next one; returns that rate."""
        self.epoch += 1
        self.optimizer.lr = self.lr_at(self.epoch)
        return self.optimizer.lr

    def lr_at(self, epoch):
        raise NotImplementedError

    def _epoch(self, epoch):
        return check_int(f"{type(self).__name__}.lr_at", "epoch", epoch, minimum=0)


class StepLR(_Scheduler):
    """lr_e = lr_0 gamma^floor(e / step_size): the rate drops by the factor gamma every step_size epochs.

    Epochs e count from 0; lr_0 is the optimizer's rate when the scheduler is
    made. Parameters: optimizer, an SGD or Adam; step_size >= 1; gamma in (0, 1].
    ``step()`` after each epoch. Like PyTorch's StepLR. Used in chapters 5 and 7.
    """

    def __init__(self, optimizer, step_size, gamma=0.1):
        super().__init__(optimizer)
        self.step_size = check_int("StepLR", "step_size", step_size, minimum=1)
        self.gamma = check_real("StepLR", "gamma", gamma, low=0, high=1, low_open=True)

    def lr_at(self, epoch):
        """The rate for epoch ``epoch`` (from 0)."""
        return self.base_lr * self.gamma ** (self._epoch(epoch) // self.step_size)


class CosineLR(_Scheduler):
    """lr_e = min_lr + (lr_0 - min_lr) (1 + cos(pi e / E)) / 2, e < E.

    Over E = ``epochs`` epochs (e = 0, ..., E - 1) the rate falls from lr_0
    towards min_lr along half a cosine; the last epoch uses a rate just
    above min_lr, and later epochs keep it. Parameters: optimizer, an SGD
    or Adam; epochs >= 1; min_lr in [0, lr_0). ``step()`` after each
    epoch. The annealing of SGDR (Loshchilov and Hutter, 2017) without
    restarts. Used in chapter 5.
    """

    def __init__(self, optimizer, epochs, min_lr=0.0):
        super().__init__(optimizer)
        self.epochs = check_int("CosineLR", "epochs", epochs, minimum=1)
        self.min_lr = check_real("CosineLR", "min_lr", min_lr, low=0,
                                 high=self.base_lr, high_open=True)

    def lr_at(self, epoch):
        """The rate of epoch ``epoch`` (from 0); later ones keep the last."""
        e = min(self._epoch(epoch), self.epochs - 1)
        cosine = 0.5 * (1.0 + math.cos(math.pi * e / self.epochs))
        return self.min_lr + (self.base_lr - self.min_lr) * cosine
