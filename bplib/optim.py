"""Optimizers: what to do with a gradient once backprop has computed it (chapter 5).

An optimizer works on two dicts with the same keys: ``params`` maps each name
to a parameter array and ``grads`` maps it to the gradient of the loss with
respect to that array, of the same shape (``nn.Module.params`` and
``nn.Module.grads`` are such dicts). ``step(params, grads)`` updates the arrays
of ``params`` IN PLACE, so that a module whose dict this is sees the new
values; it never changes ``grads``. State that outlives a step (a velocity, the
moment estimates of Adam) is kept inside the optimizer, one array per name.

Weight decay with coefficient lambda adds the gradient of (lambda / 2) ||w||^2,
which is lambda w, to every gradient before the update (L2 regularisation).
"""

import numpy as np

from bplib._validate import as_float_array, check_real


def _check_dicts(fn, params, grads):
    """Check that params and grads are dicts of float arrays with equal keys and shapes."""
    for name, d in (("params", params), ("grads", grads)):
        if not isinstance(d, dict):
            raise TypeError(f"{fn}: argument '{name}' must be a dict from name to array, got {type(d).__name__}")
    if set(params) != set(grads):
        missing, extra = sorted(set(params) - set(grads)), sorted(set(grads) - set(params))
        raise ValueError(f"{fn}: 'params' and 'grads' must have the same keys; missing from grads: {missing}, not in params: {extra}")
    for key, p in params.items():
        if not isinstance(p, np.ndarray) or p.dtype.kind != "f":
            kind = p.dtype if isinstance(p, np.ndarray) else type(p).__name__
            raise TypeError(f"{fn}: params['{key}'] must be a float numpy array (it is updated in place), got {kind}")
        g = as_float_array(fn, f"grads['{key}']", grads[key])
        if g.shape != p.shape:
            raise ValueError(f"{fn}: params['{key}'] has shape {p.shape} but grads['{key}'] has shape {g.shape}; they must match")


class Optimizer:
    """Base class: validation, weight decay and per-name state shared by SGD and Adam (chapter 5)."""

    def __init__(self, lr, weight_decay):
        name = type(self).__name__
        self.lr = check_real(name, "lr", lr, low=0, low_open=True)
        self.weight_decay = check_real(name, "weight_decay", weight_decay, low=0)
        self.state = {}  # name -> dict of arrays, created at the first step that sees the name

    def step(self, params, grads):
        """Update every array of ``params`` in place from ``grads`` (same keys, same shapes)."""
        _check_dicts(f"{type(self).__name__}.step", params, grads)
        self._begin_step()
        for key, p in params.items():
            g = np.asarray(grads[key], dtype=p.dtype)
            if self.weight_decay:
                g = g + self.weight_decay * p  # d/dw (lambda/2 ||w||^2) = lambda w
            p -= self._update(self._state_for(key, p), g)

    def reset(self):
        """Forget every velocity or moment estimate, as if no step had been taken."""
        self.state.clear()

    def _state_for(self, key, p):
        if key not in self.state:
            self.state[key] = {"t": 0}
        s = self.state[key]
        for arr in s.values():
            if isinstance(arr, np.ndarray) and arr.shape != p.shape:
                raise ValueError(f"{type(self).__name__}.step: params['{key}'] has shape {p.shape}, but the state kept for it "
                                 f"has shape {arr.shape}; call reset() before reusing an optimizer on new parameters")
        return s

    def _begin_step(self):
        pass

    def _update(self, s, g):
        raise NotImplementedError


class SGD(Optimizer):
    """Stochastic gradient descent, with optional momentum: v <- mu v + g, w <- w - lr v.

    With momentum mu = 0 this is w <- w - lr g. The velocity v starts at zero,
    one array per parameter name. Parameters: lr > 0, the learning rate;
    momentum in [0, 1); weight_decay >= 0, the L2 coefficient lambda (adds
    lambda w to g). ``step(params, grads)`` updates params in place.
    Derived in chapter 5; momentum after Polyak (1964).
    """

    def __init__(self, lr, momentum=0.0, weight_decay=0.0):
        super().__init__(lr, weight_decay)
        self.momentum = check_real("SGD", "momentum", momentum, low=0, high=1, high_open=True)

    def _update(self, s, g):
        if not self.momentum:
            return self.lr * g
        v = s.setdefault("v", np.zeros_like(g))
        v *= self.momentum
        v += g  # v_t = mu v_{t-1} + g_t: an exponentially weighted sum of past gradients
        return self.lr * v


class Adam(Optimizer):
    """Adam: m <- b1 m + (1-b1) g, v <- b2 v + (1-b2) g^2, w <- w - lr m_hat / (sqrt(v_hat) + eps).

    m_hat = m / (1 - b1^t) and v_hat = v / (1 - b2^t) undo the bias of moment
    estimates that start at zero; t counts the steps taken for each name.
    Parameters: lr > 0; beta1, beta2 in [0, 1); eps > 0; weight_decay >= 0
    (the L2 gradient lambda w is added to g, as PyTorch's torch.optim.Adam does, not decoupled as in AdamW).
    ``step(params, grads)`` updates params in place. Derived in chapter 5,
    after Kingma and Ba (2015).
    """

    def __init__(self, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0):
        super().__init__(lr, weight_decay)
        self.beta1 = check_real("Adam", "beta1", beta1, low=0, high=1, high_open=True)
        self.beta2 = check_real("Adam", "beta2", beta2, low=0, high=1, high_open=True)
        self.eps = check_real("Adam", "eps", eps, low=0, low_open=True)

    def _update(self, s, g):
        m = s.setdefault("m", np.zeros_like(g))
        v = s.setdefault("v", np.zeros_like(g))
        s["t"] += 1
        m *= self.beta1
        m += (1.0 - self.beta1) * g
        v *= self.beta2
        v += (1.0 - self.beta2) * g * g
        m_hat = m / (1.0 - self.beta1 ** s["t"])  # E[m_t] = (1 - b1^t) E[g] for a steady g
        v_hat = v / (1.0 - self.beta2 ** s["t"])
        return self.lr * m_hat / (np.sqrt(v_hat) + self.eps)
