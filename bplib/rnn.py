"""Recurrent nets: a vanilla RNN, an LSTM, truncated BPTT and gradient clipping (chapter 8).

A sequence forward runs the step for t = 1..T and keeps what the backward
needs: the inputs, every hidden state (and, for the LSTM, every cell state and
gate). Its backward runs the steps in reverse, carrying the gradient of the
hidden state from step t into step t - 1 (backpropagation through time, BPTT);
the gradients of the shared weights are sums over the steps, formed once after
the loop as matrix products over all N T rows. The optional factors
``carry[t]`` scale what step t sends back (0 cuts it): truncation in chunks,
randomized truncation, or any other pattern. ``truncated_bptt`` streams a long
sequence: forward and backward one chunk at a time, carrying the states into
the next chunk as constants, so memory grows with the chunk, not with T.
Shapes: N batch, T time steps, D input features, Dh hidden size.
"""

from typing import NamedTuple

import numpy as np

from bplib._validate import as_float_array, check_cache, check_int, check_real, check_rng, check_shape


class RnnStepCache(NamedTuple):
    """What rnn_step_backward needs: the step's inputs x (N, D) and h_prev (N, Dh), the weights, and h_next (N, Dh)."""

    x: np.ndarray
    h_prev: np.ndarray
    Wx: np.ndarray
    Wh: np.ndarray
    h_next: np.ndarray
    made_by = "rnn_step_forward"


class RnnCache(NamedTuple):
    """What rnn_backward needs: x (N, T, D), h0 (N, Dh), every hidden state h (N, T, Dh), Wx and Wh."""

    x: np.ndarray
    h0: np.ndarray
    h: np.ndarray
    Wx: np.ndarray
    Wh: np.ndarray
    made_by = "rnn_forward"

    @property
    def steps(self):
        """The same cache as one RnnStepCache per step (views, no copies), for a loop of step backwards."""
        h_prev = _before(self.h0, self.h)
        return tuple(RnnStepCache(self.x[:, t], h_prev[:, t], self.Wx, self.Wh, self.h[:, t])
                     for t in range(self.h.shape[1]))


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
    """What lstm_backward needs: x (N, T, D), h0 and c0 (N, Dh), every h and c (N, T, Dh),
    every step's gates (N, T, 4Dh), Wx and Wh."""

    x: np.ndarray
    h0: np.ndarray
    c0: np.ndarray
    h: np.ndarray
    c: np.ndarray
    gates: np.ndarray
    Wx: np.ndarray
    Wh: np.ndarray
    made_by = "lstm_forward"

    @property
    def steps(self):
        """The same cache as one LstmStepCache per step, for a loop of step backwards."""
        h_prev, c_prev, tc = _before(self.h0, self.h), _before(self.c0, self.c), np.tanh(self.c)
        return tuple(LstmStepCache(self.x[:, t], h_prev[:, t], c_prev[:, t], self.Wx, self.Wh,
                                   self.gates[:, t], tc[:, t]) for t in range(self.h.shape[1]))


class TruncatedBptt(NamedTuple):
    """What truncated_bptt returns: the weight gradients summed over the chunks, and the final states."""

    dWx: np.ndarray
    dWh: np.ndarray
    db: np.ndarray
    h: np.ndarray
    c: object  # (N, Dh) for an LSTM, None for an RNN


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


def _cell_state(fn, name, c, h):
    c = as_float_array(fn, name, np.zeros_like(h) if c is None else c, ndim=2)
    _agree(fn, c.shape == h.shape, name, c, "h0" if name == "c0" else "h_prev", h, f"{name} and the hidden state both (N, Dh)")
    return c


def _quietly(f, *args):
    """f(*args) without numpy's overflow warnings: the callers check the results once, at the end."""
    with np.errstate(over="ignore", invalid="ignore"):
        return f(*args)


def _overflowed(fn, h):
    """Refuse a result that is NaN because a pre-activation overflowed (inf - inf); one sum, checked once.

    A pre-activation of +-inf alone is fine: tanh and sigma saturate to +-1, 0 or 1, as they should.
    """
    if not np.isfinite(h.sum()):
        raise ValueError(f"{fn}: the pre-activations x Wx + h Wh + b overflowed to NaN; x or the weights are too large "
                         f"for {h.dtype}")


def _finite_grads(fn, grads):
    """Refuse gradients that overflowed (the true values lie beyond the dtype); one sum per array."""
    with np.errstate(over="ignore", invalid="ignore"):
        bad = [g for g in grads if not np.isfinite(g.sum())]
    if any(not np.all(np.isfinite(g)) for g in bad):
        raise ValueError(f"{fn}: the gradients overflow {bad[0].dtype}; the upstream gradient, the carry factors or "
                         f"the weights are too large")
    return grads


def _before(first, seq):
    """The state before each step: first (N, Dh) then seq[:, :-1], as (N, T, Dh)."""
    return np.concatenate([first[:, None], seq[:, :-1]], axis=1)


def _weight_grads(x, h_before, da):
    """dx = da Wx^T is formed by the caller; here dWx = sum_t x_t^T da_t, dWh = sum_t h_{t-1}^T da_t, db = sum da,
    each one matrix product over all N T rows: a shared weight's gradient is the sum over its uses."""
    rows = da.reshape(-1, da.shape[-1])  # (N T, Dh or 4Dh)
    return (x.reshape(-1, x.shape[-1]).T @ rows, h_before.reshape(-1, h_before.shape[-1]).T @ rows,
            np.ones(rows.shape[0], dtype=rows.dtype) @ rows)


def _carry(fn, carry, T):
    if carry is None:
        return np.ones(T)
    carry = as_float_array(fn, "carry", carry, ndim=1)
    check_shape(fn, "carry", carry, (T,))
    return carry


def _upstream(fn, name, d, shape):
    d = as_float_array(fn, name, d, ndim=len(shape))
    check_shape(fn, name, d, shape)
    return d


# ---------------------------------------------------------------- the vanilla RNN


def rnn_step_forward(x, h_prev, Wx, Wh, b):
    """h_next = tanh(x Wx + h_prev Wh + b).

    Parameters: x (N, D); h_prev (N, Dh); Wx (D, Dh); Wh (Dh, Dh); b (Dh,).
    Returns: (h_next, cache), h_next (N, Dh). Derived in chapter 8.
    """
    fn = "rnn_step_forward"
    x, h_prev, Wx, Wh, b = _params(fn, x, h_prev, Wx, Wh, b, gates=1, x_ndim=2, h_name="h_prev")
    h_next = _quietly(lambda: np.tanh(x @ Wx + h_prev @ Wh + b))  # (N, Dh)
    _overflowed(fn, h_next)
    return h_next, RnnStepCache(x, h_prev, Wx, Wh, h_next)


def rnn_step_backward(dh_next, cache):
    """da = dh_next (1 - h_next^2); dx = da Wx^T, dh_prev = da Wh^T, dWx = x^T da, ...

    ... dWh = h_prev^T da, db = sum_n da.
    Parameters: dh_next (N, Dh); cache from rnn_step_forward.
    Returns: (dx (N, D), dh_prev (N, Dh), dWx (D, Dh), dWh (Dh, Dh), db (Dh,)).
    Derived in chapter 8.
    """
    fn = "rnn_step_backward"
    c = check_cache(fn, cache, RnnStepCache)
    dh_next = _upstream(fn, "dh_next", dh_next, c.h_next.shape)
    with np.errstate(over="ignore", invalid="ignore"):
        da = dh_next * (1.0 - c.h_next * c.h_next)  # (N, Dh), through tanh' = 1 - h^2
        grads = da @ c.Wx.T, da @ c.Wh.T, c.x.T @ da, c.h_prev.T @ da, da.sum(axis=0)
    return _finite_grads(fn, grads)


def _rnn_sequence(fn, x, h0, Wx, Wh, b):
    xw = x @ Wx + b  # (N, T, Dh): the input part of every step, in one matrix product
    h = np.empty(xw.shape, dtype=np.result_type(xw, h0, Wh))
    h_prev = h0
    for t in range(x.shape[1]):
        h_prev = np.tanh(xw[:, t] + h_prev @ Wh, out=h[:, t])  # h_t = tanh(x_t Wx + h_{t-1} Wh + b)
    _overflowed(fn, h)
    return h, RnnCache(x, h0, h, Wx, Wh)


def rnn_forward(x, h0, Wx, Wh, b):
    """h_t = tanh(x_t Wx + h_{t-1} Wh + b) for t = 1..T, starting from h0.

    Parameters: x (N, T, D); h0 (N, Dh); Wx (D, Dh); Wh (Dh, Dh); b (Dh,).
    Returns: (h, cache), h (N, T, Dh). Derived in chapter 8.
    """
    fn = "rnn_forward"
    return _quietly(_rnn_sequence, fn, *_params(fn, x, h0, Wx, Wh, b, gates=1, x_ndim=3, h_name="h0"))


def _rnn_bptt(dh, c, carry):
    """BPTT on checked arguments; carry[t] scales what step t sends back to t - 1."""
    da = np.empty(c.h.shape, dtype=np.result_type(dh, c.h))  # (N, T, Dh)
    back = np.zeros_like(c.h0)  # (N, Dh): nothing comes back from after step T
    for t in reversed(range(c.h.shape[1])):
        h_t = c.h[:, t]
        # the total dL/dh_t is dh[:, t] + back; through tanh' = 1 - h_t^2
        np.multiply(dh[:, t] + back, 1.0 - h_t * h_t, out=da[:, t])
        back = float(carry[t]) * (da[:, t] @ c.Wh.T)  # into h_{t-1} (for t = 0, h0)
    return (da @ c.Wx.T, back, *_weight_grads(c.x, _before(c.h0, c.h), da))


def rnn_backward(dh, cache, carry=None):
    """dL/dh_t = dh_t + carry[t+1] (dL/dh_{t+1} (1 - h_{t+1}^2)) Wh^T; dWx, dWh, db sum over t.

    Full BPTT when carry is None (every factor 1). Otherwise carry (T,) scales the
    gradient that step t sends back into step t - 1 (for t = 0, into h0): 0 cuts it.
    Parameters: dh (N, T, Dh), the upstream gradient of every hidden state; cache from
    rnn_forward; carry, None or T finite factors.
    Returns: (dx (N, T, D), dh0 (N, Dh), dWx (D, Dh), dWh (Dh, Dh), db (Dh,)). Derived in chapter 8.
    """
    fn = "rnn_backward"
    c = check_cache(fn, cache, RnnCache)
    dh = _upstream(fn, "dh", dh, c.h.shape)
    return _finite_grads(fn, _quietly(_rnn_bptt, dh, c, _carry(fn, carry, c.h.shape[1])))


def rnn_truncated_backward(dh, cache, k):
    """rnn_backward with carry[t] = 0 where t is a positive multiple of k, else 1.

    Truncated BPTT: steps 1..T are grouped in chunks of k and no gradient crosses
    from one chunk into the one before; dh0 is what leaves the first chunk.
    k >= T gives full BPTT; k = 1 keeps only each step's own term.
    Parameters: dh (N, T, Dh); cache from rnn_forward; k, an integer >= 1.
    Returns: (dx (N, T, D), dh0 (N, Dh), dWx (D, Dh), dWh (Dh, Dh), db (Dh,)). Derived in chapter 8.
    """
    fn = "rnn_truncated_backward"
    k = check_int(fn, "k", k, minimum=1)
    c = check_cache(fn, cache, RnnCache)
    t = np.arange(c.h.shape[1])
    carry = np.where((t % k == 0) & (t > 0), 0.0, 1.0)
    return _finite_grads(fn, _quietly(_rnn_bptt, _upstream(fn, "dh", dh, c.h.shape), c, carry))


def rnn_random_truncated_backward(dh, cache, p, rng):
    """rnn_backward with carry[t] = 0 w.p. p, else 1 / (1 - p), independently for t >= 1; carry[0] = 1.

    Randomized truncation (Tallec and Ollivier 2017): the carried gradient is cut
    with probability p at each step, so chunk lengths are geometric with mean 1 / p,
    and reweighted by 1 / (1 - p) when it survives. Every gradient path crosses
    independent factors of mean 1, so E[result] is the full BPTT gradient; p = 0 is
    full BPTT. Parameters: dh (N, T, Dh); cache from rnn_forward; p in [0, 1);
    rng, a numpy Generator (T uniforms are drawn).
    Returns: (dx (N, T, D), dh0 (N, Dh), dWx (D, Dh), dWh (Dh, Dh), db (Dh,)). Derived in chapter 8.
    """
    fn = "rnn_random_truncated_backward"
    p = check_real(fn, "p", p, low=0, high=1, high_open=True)
    rng = check_rng(fn, "rng", rng)
    c = check_cache(fn, cache, RnnCache)
    carry = np.where(rng.random(c.h.shape[1]) < p, 0.0, 1.0 / (1.0 - p))
    carry[0] = 1.0  # h0 is where the sequence starts, not a truncation point
    return _finite_grads(fn, _quietly(_rnn_bptt, _upstream(fn, "dh", dh, c.h.shape), c, carry))


# ---------------------------------------------------------------- the LSTM


def _gates(a, Dh):
    """[i, f, g, o] = [sigma, sigma, tanh, sigma](a) for the stacked pre-activations a (N, 4Dh), in place.

    sigma(z) = (1 + tanh(z / 2)) / 2, so one tanh serves all four and nothing overflows.
    """
    a[:, : 2 * Dh] *= 0.5
    a[:, 3 * Dh :] *= 0.5
    np.tanh(a, out=a)
    for s in (slice(0, 2 * Dh), slice(3 * Dh, 4 * Dh)):  # i, f and o
        a[:, s] += 1.0
        a[:, s] *= 0.5
    return a


def _lstm_cell(a, c_prev):
    """One step from the pre-activations a (N, 4Dh): (gates, c_next, tanh c_next, h_next)."""
    gates = _gates(a, c_prev.shape[1])
    i, f, g, o = np.split(gates, 4, axis=1)
    c_next = f * c_prev + i * g  # (N, Dh): the cell is updated by addition
    tc = np.tanh(c_next)
    return gates, c_next, tc, o * tc


def _lstm_cell_back(dh, dc, gates, c_prev, tc):
    """(da (N, 4Dh), dc_prev (N, Dh)) of one step.

    dh is the total dL/dh_t; dc is what reaches c_t along the cell from step t+1.
    """
    i, f, g, o = np.split(gates, 4, axis=1)
    dc = dc + dh * o * (1.0 - tc * tc)  # total dL/dc_t: the cell, and h_t = o tanh c_t
    # through the nonlinearities: sigma' = s (1 - s) for i, f, o; tanh' = 1 - g^2 for g
    da_i = dc * g * i * (1.0 - i)
    da_f = dc * c_prev * f * (1.0 - f)
    da_g = dc * i * (1.0 - g * g)
    da_o = dh * tc * o * (1.0 - o)
    da = np.concatenate([da_i, da_f, da_g, da_o], axis=1)
    return da, dc * f  # along the cell, only the forget gate multiplies


def lstm_step_forward(x, h_prev, c_prev, Wx, Wh, b):
    """[i, f, g, o] = [sigma, sigma, tanh, sigma](x Wx + h_prev Wh + b); c_next = f c_prev + i g; h_next = o tanh(c_next).

    Parameters: x (N, D); h_prev, c_prev (N, Dh); Wx (D, 4Dh); Wh (Dh, 4Dh); b (4Dh,).
    Returns: (h_next, c_next, cache), h_next and c_next (N, Dh). Derived in chapter 8.
    """
    fn = "lstm_step_forward"
    x, h_prev, Wx, Wh, b = _params(fn, x, h_prev, Wx, Wh, b, gates=4, x_ndim=2, h_name="h_prev")
    c_prev = _cell_state(fn, "c_prev", c_prev, h_prev)
    gates, c_next, tc, h_next = _quietly(lambda: _lstm_cell(x @ Wx + h_prev @ Wh + b, c_prev))
    _overflowed(fn, h_next)
    return h_next, c_next, LstmStepCache(x, h_prev, c_prev, Wx, Wh, gates, tc)


def lstm_step_backward(dh_next, dc_next, cache):
    """dc = dc_next + dh_next o (1 - tanh^2 c_next); da = [dc g, dc c_prev, dc i, dh_next tanh c_next] * gate'.

    Then dx = da Wx^T, dh_prev = da Wh^T, dc_prev = dc f, dWx = x^T da, dWh = h_prev^T da, db = sum_n da.
    Parameters: dh_next, dc_next (N, Dh); cache from lstm_step_forward. Returns: (dx (N, D),
    dh_prev (N, Dh), dc_prev (N, Dh), dWx (D, 4Dh), dWh (Dh, 4Dh), db (4Dh,)). Derived in chapter 8.
    """
    fn = "lstm_step_backward"
    c = check_cache(fn, cache, LstmStepCache)
    dh_next, dc_next = _upstream(fn, "dh_next", dh_next, c.tc.shape), _upstream(fn, "dc_next", dc_next, c.tc.shape)
    with np.errstate(over="ignore", invalid="ignore"):
        da, dc_prev = _lstm_cell_back(dh_next, dc_next, c.gates, c.c_prev, c.tc)
        grads = da @ c.Wx.T, da @ c.Wh.T, dc_prev, c.x.T @ da, c.h_prev.T @ da, da.sum(axis=0)
    return _finite_grads(fn, grads)


def _lstm_sequence(fn, x, h0, Wx, Wh, b, c0):
    N, T, _ = x.shape
    xw = x @ Wx + b  # (N, T, 4Dh): the input part of every step, in one matrix product
    dtype = np.result_type(xw, h0, c0, Wh)
    h, c = np.empty((N, T, h0.shape[1]), dtype=dtype), np.empty((N, T, h0.shape[1]), dtype=dtype)
    gates = np.empty(xw.shape, dtype=dtype)
    h_prev, c_prev = h0, c0
    for t in range(T):
        gates[:, t], c[:, t], _, h[:, t] = _lstm_cell(xw[:, t] + h_prev @ Wh, c_prev)
        h_prev, c_prev = h[:, t], c[:, t]
    _overflowed(fn, h)
    return h, c[:, -1].copy(), LstmCache(x, h0, c0, h, c, gates, Wx, Wh)


def lstm_forward(x, h0, Wx, Wh, b, c0=None):
    """(h_t, c_t) = lstm_step(x_t, h_{t-1}, c_{t-1}) for t = 1..T, from h0 and c0 (zero if None).

    Parameters: x (N, T, D); h0 (N, Dh); Wx (D, 4Dh); Wh (Dh, 4Dh); b (4Dh,); c0 (N, Dh) or None.
    Returns: (h, c_T, cache): h (N, T, Dh) every hidden state, c_T (N, Dh) the final cell
    state, to carry into the next chunk of a stream. Derived in chapter 8.
    """
    fn = "lstm_forward"
    x, h0, Wx, Wh, b = _params(fn, x, h0, Wx, Wh, b, gates=4, x_ndim=3, h_name="h0")
    return _quietly(_lstm_sequence, fn, x, h0, Wx, Wh, b, _cell_state(fn, "c0", c0, h0))


def _lstm_bptt(dh, dc_last, c, carry):
    """BPTT on checked arguments; carry[t] scales both gradients that step t sends back."""
    tc = np.tanh(c.c)  # (N, T, Dh), recomputed: cheaper to store c than both
    c_before = _before(c.c0, c.c)
    da = np.empty(c.gates.shape, dtype=np.result_type(dh, c.gates))  # (N, T, 4Dh)
    back_h, back_c = np.zeros_like(c.h0), dc_last  # (N, Dh) each: what comes back from step t + 1
    for t in reversed(range(c.h.shape[1])):
        da[:, t], back_c = _lstm_cell_back(dh[:, t] + back_h, back_c, c.gates[:, t], c_before[:, t], tc[:, t])
        back_h = da[:, t] @ c.Wh.T
        back_h, back_c = float(carry[t]) * back_h, float(carry[t]) * back_c
    return (da @ c.Wx.T, back_h, *_weight_grads(c.x, _before(c.h0, c.h), da), back_c)


def lstm_backward(dh, cache, dc=None, carry=None):
    """BPTT through the LSTM: (dL/dh, dL/dc) carried from step t into step t - 1; dW = sum_t dW_t.

    Parameters: dh (N, T, Dh), the upstream gradient of every hidden state; cache from
    lstm_forward; dc (N, Dh), the gradient of the final cell state c_T (zero if None);
    carry, None (full BPTT) or T finite factors: carry[t] scales both gradients that
    step t sends back into step t - 1 (for t = 0, into h0 and c0), 0 cuts them.
    Returns: (dx (N, T, D), dh0 (N, Dh), dWx (D, 4Dh), dWh (Dh, 4Dh), db (4Dh,), dc0 (N, Dh)).
    Derived in chapter 8.
    """
    fn = "lstm_backward"
    c = check_cache(fn, cache, LstmCache)
    dh = _upstream(fn, "dh", dh, c.h.shape)
    dc = np.zeros_like(c.h0) if dc is None else _upstream(fn, "dc", dc, c.h0.shape)
    return _finite_grads(fn, _quietly(_lstm_bptt, dh, dc, c, _carry(fn, carry, c.h.shape[1])))


# ---------------------------------------------------------------- streaming, and clipping


def truncated_bptt(x, h0, Wx, Wh, b, k, chunk_grad, *, cell="rnn", c0=None):
    """Truncated BPTT streamed: forward then backward one chunk of k steps at a time.

    The state at the end of a chunk (h, and the LSTM's c) starts the next chunk
    as a constant, so no gradient crosses a chunk boundary and only one chunk's
    cache is alive at a time: memory grows with k, not with T. The weight
    gradients equal rnn_truncated_backward's for the same k; with k >= T they
    are full BPTT's.
    Parameters: x (N, T, D); h0 (N, Dh); Wx, Wh, b as rnn_forward (cell="rnn")
    or lstm_forward (cell="lstm"); k >= 1; chunk_grad(start, h_chunk), a function
    given the chunk's first step and its hidden states (N, k', Dh), that returns
    their upstream gradient (N, k', Dh), for example from a loss on a read-out;
    c0, the LSTM's initial cell state (zero if None).
    Returns: a TruncatedBptt (dWx, dWh, db, h, c): the gradients summed over the
    chunks, and the final states h (N, Dh) and c (N, Dh; None for an RNN).
    Derived in chapter 8.
    """
    fn = "truncated_bptt"
    lstm = _stream_args(fn, cell, k, chunk_grad, c0)
    x, h, Wx, Wh, b = _params(fn, x, h0, Wx, Wh, b, gates=4 if lstm else 1, x_ndim=3,
                              h_name="h0")
    c = _cell_state(fn, "c0", c0, h) if lstm else None
    grads = [np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)]
    for s in range(0, x.shape[1], k):
        x_chunk = x[:, s : s + k]
        if lstm:
            hs, c_next, cache = _quietly(_lstm_sequence, fn, x_chunk, h, Wx, Wh, b, c)
        else:
            hs, cache = _quietly(_rnn_sequence, fn, x_chunk, h, Wx, Wh, b)
        dhs = _upstream(fn, f"chunk_grad({s}, ...)", chunk_grad(s, hs.copy()), hs.shape)
        no_cut = np.ones(hs.shape[1])  # full BPTT inside the chunk
        if lstm:
            chunk = _quietly(_lstm_bptt, dhs, np.zeros_like(c), cache, no_cut)
            c = c_next
        else:
            chunk = _quietly(_rnn_bptt, dhs, cache, no_cut)
        h = hs[:, -1].copy()  # the next chunk starts here, as a constant
        for total, g in zip(grads, chunk[2:5]):  # dWx, dWh, db
            total += g
    return TruncatedBptt(*_finite_grads(fn, grads), h, c)


def _stream_args(fn, cell, k, chunk_grad, c0):
    """Check truncated_bptt's options; True for an LSTM."""
    if cell not in ("rnn", "lstm"):
        raise ValueError(f"{fn}: argument 'cell' must be 'rnn' or 'lstm', got {cell!r}")
    if cell == "rnn" and c0 is not None:
        raise ValueError(f"{fn}: argument 'c0' is the LSTM's cell state; the RNN has none (use cell='lstm')")
    check_int(fn, "k", k, minimum=1)
    if not callable(chunk_grad):
        raise TypeError(f"{fn}: argument 'chunk_grad' must be a function (start, h_chunk) -> dh_chunk, got "
                        f"{type(chunk_grad).__name__}")
    return cell == "lstm"


def clip_grad_norm(grads, max_norm):
    """g <- g min(1, max_norm / ||g||), ||g|| the global norm over all the arrays.

    ||g|| = sqrt(sum over the arrays of sum g^2). Global-norm clipping (Pascanu et
    al. 2013) keeps the direction of the whole gradient. Parameters: grads, a dict
    from name to array (not modified); max_norm > 0. Returns: (clipped, total_norm),
    clipped a new dict of new arrays, total_norm the global norm before clipping (a
    float; inf when it exceeds the float64 range, and the clipped arrays are right
    even then). Derived in chapter 8.
    """
    fn = "clip_grad_norm"
    if not isinstance(grads, dict):
        got = type(grads).__name__
        raise TypeError(f"{fn}: argument 'grads' must be a dict of arrays, got {got}")
    max_norm = check_real(fn, "max_norm", max_norm, low=0, low_open=True)
    arrays = {k: as_float_array(fn, f"grads[{k!r}]", g) for k, g in grads.items()}
    # Divide by the largest entry before squaring: no overflow or underflow.
    big = max((float(np.abs(g).max()) for g in arrays.values() if g.size), default=0.0)
    if big == 0:
        return {k: g.copy() for k, g in arrays.items()}, 0.0
    squares = (np.sum(np.square(g / big, dtype=np.float64)) for g in arrays.values())
    root = float(np.sqrt(sum(squares)))  # ||g|| / big
    with np.errstate(over="ignore"):
        total = big * root
    if total <= max_norm:
        return {k: g.copy() for k, g in arrays.items()}, total
    factor = max_norm / root  # g max_norm / ||g|| = (g / big) (max_norm / root)
    return {k: ((g / big) * factor).astype(g.dtype) for k, g in arrays.items()}, total
