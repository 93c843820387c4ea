"""Recurrent nets: a vanilla RNN, an LSTM, truncated BPTT and gradient clipping (chapter 8).

A sequence op is a loop of step ops that keeps one cache per step; its
backward runs the loop in reverse, carrying the gradient of the hidden state
from step t into step t - 1 (backpropagation through time, BPTT) and summing
the gradients of the shared weights over the steps. Truncated BPTT scales
that carried gradient by a factor per step (0 cuts it): fixed chunks, or
random cuts reweighted so the expected gradient is the full one.
Shapes: N batch, T time steps, D input features, Dh hidden size.
"""

from typing import NamedTuple

import numpy as np

from bplib._validate import as_float_array, check_cache, check_int, check_real, check_rng, check_shape
from bplib.activations import sigmoid


class RnnStepCache(NamedTuple):
    """What rnn_step_backward needs: the step's inputs x (N, D) and h_prev (N, Dh), the weights, and h_next (N, Dh)."""

    x: np.ndarray
    h_prev: np.ndarray
    Wx: np.ndarray
    Wh: np.ndarray
    h_next: np.ndarray
    made_by = "rnn_step_forward"


class RnnCache(NamedTuple):
    """What the RNN's BPTT needs: one RnnStepCache per time step, in order."""

    steps: tuple
    made_by = "rnn_forward"


class LstmStepCache(NamedTuple):
    """What lstm_step_backward needs: the step's inputs, the weights, the gates (N, 4Dh)
    in the order i, f, g, o (after their nonlinearities) and tc = tanh(c_next) (N, Dh)."""

    x: np.ndarray
    h_prev: np.ndarray
    c_prev: np.ndarray
    Wx: np.ndarray
    Wh: np.ndarray
    gates: np.ndarray
    tc: np.ndarray
    made_by = "lstm_step_forward"


class LstmCache(NamedTuple):
    """What the LSTM's BPTT needs: one LstmStepCache per time step, in order."""

    steps: tuple
    made_by = "lstm_forward"


def _agree(fn, ok, name_a, a, name_b, b, rule):
    if not ok:
        raise ValueError(f"{fn}: argument '{name_a}' has shape {a.shape} but '{name_b}' has shape {b.shape}; expected {rule}")


def _params(fn, x, h, Wx, Wh, b, *, gates, x_ndim, h_name):
    """Convert and cross-check the arguments of a forward; gates is 1 (RNN) or 4 (LSTM)."""
    x = as_float_array(fn, "x", x, ndim=x_ndim)
    h = as_float_array(fn, h_name, h, ndim=2)
    Wx, Wh = as_float_array(fn, "Wx", Wx, ndim=2), as_float_array(fn, "Wh", Wh, ndim=2)
    b = as_float_array(fn, "b", b, ndim=1)
    G = "4Dh" if gates == 4 else "Dh"
    Dh = Wh.shape[0]
    check_shape(fn, "Wh", Wh, (Dh, gates * Dh))
    xs = "x (N, T, D)" if x_ndim == 3 else "x (N, D)"
    _agree(fn, x.shape[-1] == Wx.shape[0], "x", x, "Wx", Wx, f"{xs} and Wx (D, {G})")
    _agree(fn, Wx.shape[1] == gates * Dh, "Wx", Wx, "Wh", Wh, f"Wx (D, {G}) and Wh (Dh, {G})")
    _agree(fn, b.shape[0] == gates * Dh, "b", b, "Wh", Wh, f"b ({G},) and Wh (Dh, {G})")
    _agree(fn, h.shape[0] == x.shape[0], h_name, h, "x", x, f"{h_name} (N, Dh) and {xs}")
    _agree(fn, h.shape[1] == Dh, h_name, h, "Wh", Wh, f"{h_name} (N, Dh) and Wh (Dh, {G})")
    if x_ndim == 3 and x.shape[1] == 0:
        raise ValueError(f"{fn}: argument 'x' must have at least one time step, got shape {x.shape}")
    return x, h, Wx, Wh, b


def _steps(fn, cache, cache_type):
    """The per-step caches inside a sequence cache (an RnnCache or an LstmCache)."""
    return check_cache(fn, cache, cache_type).steps


def _rnn_step(x, h_prev, Wx, Wh, b):
    h_next = np.tanh(x @ Wx + h_prev @ Wh + b)  # (N, Dh)
    return h_next, RnnStepCache(x, h_prev, Wx, Wh, h_next)


def _rnn_step_back(dh_next, c):
    da = dh_next * (1.0 - c.h_next * c.h_next)  # (N, Dh), through tanh' = 1 - h^2
    return da @ c.Wx.T, da @ c.Wh.T, c.x.T @ da, c.h_prev.T @ da, da.sum(axis=0)


def rnn_step_forward(x, h_prev, Wx, Wh, b):
    """h_next = tanh(x Wx + h_prev Wh + b).

    Parameters: x (N, D); h_prev (N, Dh); Wx (D, Dh); Wh (Dh, Dh); b (Dh,).
    Returns: (h_next, cache), h_next (N, Dh). Derived in chapter 8.
    """
    return _rnn_step(*_params("rnn_step_forward", x, h_prev, Wx, Wh, b, gates=1, x_ndim=2, h_name="h_prev"))


def rnn_step_backward(dh_next, cache):
    """da = dh_next (1 - h_next^2); dx = da Wx^T, dh_prev = da Wh^T, dWx = x^T da, dWh = h_prev^T da, db = sum_n da.

    Parameters: dh_next (N, Dh); cache from rnn_step_forward.
    Returns: (dx (N, D), dh_prev (N, Dh), dWx (D, Dh), dWh (Dh, Dh), db (Dh,)). Derived in chapter 8.
    """
    cache = check_cache("rnn_step_backward", cache, RnnStepCache)
    dh_next = as_float_array("rnn_step_backward", "dh_next", dh_next)
    check_shape("rnn_step_backward", "dh_next", dh_next, cache.h_next.shape)
    return _rnn_step_back(dh_next, cache)


def rnn_forward(x, h0, Wx, Wh, b):
    """h_t = tanh(x_t Wx + h_{t-1} Wh + b) for t = 1..T, starting from h0.

    Parameters: x (N, T, D); h0 (N, Dh); Wx (D, Dh); Wh (Dh, Dh); b (Dh,).
    Returns: (h, cache), h (N, T, Dh); the cache holds one step cache per t. Derived in chapter 8.
    """
    x, h_prev, Wx, Wh, b = _params("rnn_forward", x, h0, Wx, Wh, b, gates=1, x_ndim=3, h_name="h0")
    N, T, _ = x.shape
    h = np.empty((N, T, Wh.shape[0]), dtype=np.result_type(x, h_prev, Wx, Wh, b))
    steps = []
    for t in range(T):
        h_prev, step = _rnn_step(x[:, t], h_prev, Wx, Wh, b)
        h[:, t] = h_prev
        steps.append(step)
    return h, RnnCache(tuple(steps))


def _bptt(fn, dh, cache, carry):
    """BPTT in which the gradient carried from step t into step t - 1 (or into h0) is scaled by carry[t]."""
    steps = _steps(fn, cache, RnnCache)
    Wx, Wh, h_first = steps[0].Wx, steps[0].Wh, steps[0].h_prev
    N, T, Dh = h_first.shape[0], len(steps), Wh.shape[0]
    dh = as_float_array(fn, "dh", dh, ndim=3)
    check_shape(fn, "dh", dh, (N, T, Dh))
    dx = np.empty((N, T, Wx.shape[0]), dtype=np.result_type(dh, Wx))
    dWx, dWh, db = np.zeros_like(Wx), np.zeros_like(Wh), np.zeros(Dh, dtype=Wh.dtype)
    dh_carry = np.zeros_like(h_first)  # (N, Dh): nothing flows back from after step T
    for t in reversed(range(T)):
        dx[:, t], dh_prev, dWx_t, dWh_t, db_t = _rnn_step_back(dh[:, t] + dh_carry, steps[t])
        dWx += dWx_t  # a shared weight's total gradient is the sum over its uses
        dWh += dWh_t
        db += db_t
        dh_carry = float(carry[t]) * dh_prev
    return dx, dh_carry, dWx, dWh, db


def rnn_backward(dh, cache):
    """g_t = dh_t + (g_{t+1} * (1 - h_{t+1}^2)) Wh^T, the total gradient of h_t; dWx, dWh, db sum over t.

    Full BPTT, with dh_t = dh[:, t - 1] for t = 1..T and dh0 = g_0.
    Parameters: dh (N, T, Dh), the upstream gradient of every hidden state; cache from rnn_forward.
    Returns: (dx (N, T, D), dh0 (N, Dh), dWx (D, Dh), dWh (Dh, Dh), db (Dh,)). Derived in chapter 8.
    """
    steps = _steps("rnn_backward", cache, RnnCache)
    return _bptt("rnn_backward", dh, cache, np.ones(len(steps)))


def rnn_truncated_backward(dh, cache, k):
    """g_t = dh_t + [t is not a positive multiple of k] (g_{t+1} * (1 - h_{t+1}^2)) Wh^T, else as rnn_backward.

    Truncated BPTT: steps 1..T are grouped in chunks of k and no gradient crosses
    from one chunk into the one before; dh0 is what leaves the first chunk.
    k >= T gives full BPTT; k = 1 keeps only each step's own term.
    Parameters: dh (N, T, Dh); cache from rnn_forward; k, an integer >= 1.
    Returns: (dx (N, T, D), dh0 (N, Dh), dWx (D, Dh), dWh (Dh, Dh), db (Dh,)). Derived in chapter 8.
    """
    k = check_int("rnn_truncated_backward", "k", k, minimum=1)
    steps = _steps("rnn_truncated_backward", cache, RnnCache)
    t = np.arange(len(steps))
    carry = np.where((t % k == 0) & (t > 0), 0.0, 1.0)
    return _bptt("rnn_truncated_backward", dh, cache, carry)


def rnn_random_truncated_backward(dh, cache, p, rng):
    """g_t = dh_t + c_t (g_{t+1} * (1 - h_{t+1}^2)) Wh^T; c_t = 0 w.p. p, else 1 / (1 - p), for t >= 1; c_0 = 1.

    Randomized truncation (Tallec and Ollivier 2017): the carried gradient is cut
    with probability p at each step, so chunk lengths are geometric with mean 1 / p,
    and reweighted by 1 / (1 - p) when it survives. Every gradient path crosses
    independent factors of mean 1, so E[result] is the full BPTT gradient; p = 0 is
    full BPTT. Parameters: dh (N, T, Dh); cache from rnn_forward; p in [0, 1);
    rng, a numpy Generator (T uniforms are drawn).
    Returns: (dx (N, T, D), dh0 (N, Dh), dWx (D, Dh), dWh (Dh, Dh), db (Dh,)). Derived in chapter 8.
    """
    p = check_real("rnn_random_truncated_backward", "p", p, low=0, high=1, high_open=True)
    rng = check_rng("rnn_random_truncated_backward", "rng", rng)
    steps = _steps("rnn_random_truncated_backward", cache, RnnCache)
    carry = np.where(rng.random(len(steps)) < p, 0.0, 1.0 / (1.0 - p))
    carry[0] = 1.0  # h0 is where the sequence starts, not a truncation point
    return _bptt("rnn_random_truncated_backward", dh, cache, carry)


def _lstm_step(x, h_prev, c_prev, Wx, Wh, b):
    Dh = h_prev.shape[1]
    a = x @ Wx + h_prev @ Wh + b  # (N, 4Dh), gate pre-activations in the order i, f, g, o
    gates = sigmoid(a)
    gates[:, 2 * Dh : 3 * Dh] = np.tanh(a[:, 2 * Dh : 3 * Dh])
    i, f, g, o = np.split(gates, 4, axis=1)
    c_next = f * c_prev + i * g  # (N, Dh)
    tc = np.tanh(c_next)
    return o * tc, c_next, LstmStepCache(x, h_prev, c_prev, Wx, Wh, gates, tc)


def _lstm_step_back(dh_next, dc_next, c):
    i, f, g, o = np.split(c.gates, 4, axis=1)
    tc = c.tc
    dc = dc_next + dh_next * o * (1.0 - tc * tc)  # c_next reaches the loss directly and through h_next
    di, df, dg, do = dc * g, dc * c.c_prev, dc * i, dh_next * tc
    # Through the gate nonlinearities: sigma' = s (1 - s) for i, f, o and tanh' = 1 - g^2 for g.
    da = np.concatenate([di * i * (1 - i), df * f * (1 - f), dg * (1 - g * g), do * o * (1 - o)], axis=1)
    return da @ c.Wx.T, da @ c.Wh.T, dc * f, c.x.T @ da, c.h_prev.T @ da, da.sum(axis=0)


def lstm_step_forward(x, h_prev, c_prev, Wx, Wh, b):
    """[i, f, g, o] = [sigma, sigma, tanh, sigma](x Wx + h_prev Wh + b); c_next = f c_prev + i g; h_next = o tanh(c_next).

    Parameters: x (N, D); h_prev, c_prev (N, Dh); Wx (D, 4Dh); Wh (Dh, 4Dh); b (4Dh,).
    Returns: (h_next, c_next, cache), h_next and c_next (N, Dh). Derived in chapter 8.
    """
    fn = "lstm_step_forward"
    x, h_prev, Wx, Wh, b = _params(fn, x, h_prev, Wx, Wh, b, gates=4, x_ndim=2, h_name="h_prev")
    c_prev = as_float_array(fn, "c_prev", c_prev, ndim=2)
    _agree(fn, c_prev.shape == h_prev.shape, "c_prev", c_prev, "h_prev", h_prev, "c_prev and h_prev both (N, Dh)")
    return _lstm_step(x, h_prev, c_prev, Wx, Wh, b)


def lstm_step_backward(dh_next, dc_next, cache):
    """dc = dc_next + dh_next o (1 - tanh^2 c_next); da = [dc g, dc c_prev, dc i, dh_next tanh c_next] * gate'.

    Then dx = da Wx^T, dh_prev = da Wh^T, dc_prev = dc f, dWx = x^T da, dWh = h_prev^T da, db = sum_n da.
    Parameters: dh_next, dc_next (N, Dh); cache from lstm_step_forward. Returns: (dx (N, D),
    dh_prev (N, Dh), dc_prev (N, Dh), dWx (D, 4Dh), dWh (Dh, 4Dh), db (4Dh,)). Derived in chapter 8.
    """
    fn = "lstm_step_backward"
    cache = check_cache(fn, cache, LstmStepCache)
    dh_next, dc_next = as_float_array(fn, "dh_next", dh_next), as_float_array(fn, "dc_next", dc_next)
    check_shape(fn, "dh_next", dh_next, cache.tc.shape)
    check_shape(fn, "dc_next", dc_next, cache.tc.shape)
    return _lstm_step_back(dh_next, dc_next, cache)


def lstm_forward(x, h0, Wx, Wh, b):
    """(h_t, c_t) = lstm_step(x_t, h_{t-1}, c_{t-1}) for t = 1..T, from h0 and c0 = 0.

    Parameters: x (N, T, D); h0 (N, Dh); Wx (D, 4Dh); Wh (Dh, 4Dh); b (4Dh,).
    Returns: (h, cache), h (N, T, Dh); the cache holds one step cache per t. Derived in chapter 8.
    """
    x, h_prev, Wx, Wh, b = _params("lstm_forward", x, h0, Wx, Wh, b, gates=4, x_ndim=3, h_name="h0")
    N, T, _ = x.shape
    h = np.empty((N, T, Wh.shape[0]), dtype=np.result_type(x, h_prev, Wx, Wh, b))
    c_prev = np.zeros_like(h_prev)
    steps = []
    for t in range(T):
        h_prev, c_prev, step = _lstm_step(x[:, t], h_prev, c_prev, Wx, Wh, b)
        h[:, t] = h_prev
        steps.append(step)
    return h, LstmCache(tuple(steps))


def lstm_backward(dh, cache):
    """BPTT through the LSTM: carry (dh, dc) from step t into step t - 1; dW = sum_t dW_t.

    Parameters: dh (N, T, Dh), the upstream gradient of every hidden state; cache from lstm_forward.
    Returns: (dx (N, T, D), dh0 (N, Dh), dWx (D, 4Dh), dWh (Dh, 4Dh), db (4Dh,)). Derived in chapter 8.
    """
    steps = _steps("lstm_backward", cache, LstmCache)
    Wx, Wh, h_first = steps[0].Wx, steps[0].Wh, steps[0].h_prev
    N, T, Dh = h_first.shape[0], len(steps), h_first.shape[1]
    dh = as_float_array("lstm_backward", "dh", dh, ndim=3)
    check_shape("lstm_backward", "dh", dh, (N, T, Dh))
    dx = np.empty((N, T, Wx.shape[0]), dtype=np.result_type(dh, Wx))
    dWx, dWh, db = np.zeros_like(Wx), np.zeros_like(Wh), np.zeros(4 * Dh, dtype=Wh.dtype)
    dh_carry, dc_carry = np.zeros_like(h_first), np.zeros_like(h_first)  # (N, Dh) each
    for t in reversed(range(T)):
        dx[:, t], dh_carry, dc_carry, dWx_t, dWh_t, db_t = _lstm_step_back(dh[:, t] + dh_carry, dc_carry, steps[t])
        dWx += dWx_t
        dWh += dWh_t
        db += db_t
    return dx, dh_carry, dWx, dWh, db


def clip_grad_norm(grads, max_norm):
    """g <- g min(1, max_norm / ||g||), with ||g|| the global norm sqrt(sum over all arrays of sum g^2).

    Global-norm clipping (Pascanu et al. 2013) keeps the direction of the whole
    gradient. Parameters: grads, a dict from name to array (not modified);
    max_norm > 0. Returns: (clipped, total_norm), clipped a new dict of new
    arrays, total_norm the global norm before clipping. Derived in chapter 8.
    """
    if not isinstance(grads, dict):
        raise TypeError(f"clip_grad_norm: argument 'grads' must be a dict from name to array, got {type(grads).__name__}")
    max_norm = check_real("clip_grad_norm", "max_norm", max_norm, low=0, low_open=True)
    arrays = {name: as_float_array("clip_grad_norm", f"grads[{name!r}]", g) for name, g in grads.items()}
    # Divide by the largest entry before squaring, so that huge gradients do not overflow.
    big = max((float(np.max(np.abs(g))) for g in arrays.values() if g.size), default=0.0)
    total = 0.0 if big == 0 else big * float(np.sqrt(sum(np.sum((g.astype(np.float64) / big) ** 2) for g in arrays.values())))
    scale = min(1.0, max_norm / total) if total > 0 else 1.0
    clipped = {name: (g * scale).astype(g.dtype, copy=False) if scale < 1 else g.copy() for name, g in arrays.items()}
    return clipped, total
