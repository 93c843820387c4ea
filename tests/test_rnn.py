"""Tests of bplib.rnn: RNN and LSTM steps and sequences, truncated BPTT, gradient clipping."""

import copy
import functools
import itertools
import math
import re
import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import rnn_problems, seeds

from bplib import rnn
from bplib.gradcheck import check_backward

NAMES = ("x", "h0", "Wx", "Wh", "b")
GRADCHECK = settings(max_examples=25)


def _sigma(z):
    return 1.0 / (1.0 + math.exp(-z))


def _lstm_step_joint(x, h_prev, c_prev, Wx, Wh, b):
    # One output (2, N, Dh) = [h_next, c_next], so check_backward draws dh_next and dc_next together.
    h, c, cache = rnn.lstm_step_forward(x, h_prev, c_prev, Wx, Wh, b)
    return np.stack([h, c]), cache


def _lstm_step_joint_backward(dout, cache):
    return rnn.lstm_step_backward(dout[0], dout[1], cache)


def _lstm_pair_forward(x, h0, Wx, Wh, b):
    # lstm_forward as an (out, cache) pair over the RNN's arguments: c0 = 0 and the final cell state dropped.
    h, _, cache = rnn.lstm_forward(x, h0, Wx, Wh, b)
    return h, cache


def _lstm_pair_backward(dh, cache):
    return rnn.lstm_backward(dh, cache)[:5]  # dx, dh0, dWx, dWh, db; dc0 is checked on its own below


def _fixed_problem(N=2, T=4, D=3, Dh=3, gates=1, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((N, T, D)), rng.standard_normal((N, Dh)), 0.5 * rng.standard_normal((D, gates * Dh)),
            0.5 * rng.standard_normal((Dh, gates * Dh)), 0.5 * rng.standard_normal(gates * Dh))


def _assert_grads_close(got, want, rtol=1e-12, atol=1e-14):
    assert len(got) == len(want)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=rtol, atol=atol)


def _assert_same_tree(a, b):
    if isinstance(a, tuple):
        assert isinstance(b, tuple) and len(a) == len(b)
        for u, v in zip(a, b):
            _assert_same_tree(u, v)
    else:
        np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------- by hand


def test_rnn_forward_by_hand():
    # h_1 = tanh(0.5 * 0.8 + 0.2 * (-0.6) + 0.1), h_2 = tanh(-1 * 0.8 + h_1 * (-0.6) + 0.1), with D = Dh = 1.
    x = np.array([[[0.5], [-1.0]]])
    h, _ = rnn.rnn_forward(x, np.array([[0.2]]), np.array([[0.8]]), np.array([[-0.6]]), np.array([0.1]))
    h1 = math.tanh(0.38)
    np.testing.assert_allclose(h.ravel(), [h1, math.tanh(-0.7 - 0.6 * h1)], rtol=1e-14)


def test_rnn_backward_by_hand():
    # L = h_2 (dh = [0, 1]); by the scalar chain rule a_2' = 1 - h_2^2, a_1' = a_2' wh (1 - h_1^2),
    # and each weight collects one term per step: dwx = a_2' x_2 + a_1' x_1, and so on.
    x1, x2, h0, wx, wh = 0.5, -1.0, 0.2, 0.8, -0.6
    h1 = math.tanh(x1 * wx + h0 * wh + 0.1)
    h2 = math.tanh(x2 * wx + h1 * wh + 0.1)
    da2 = 1 - h2**2
    da1 = da2 * wh * (1 - h1**2)
    _, cache = rnn.rnn_forward(np.array([[[x1], [x2]]]), np.array([[h0]]), np.array([[wx]]), np.array([[wh]]), np.array([0.1]))
    dx, dh0, dWx, dWh, db = rnn.rnn_backward(np.array([[[0.0], [1.0]]]), cache)
    np.testing.assert_allclose(dx.ravel(), [da1 * wx, da2 * wx], rtol=1e-13)
    want = [da1 * wh, da2 * x2 + da1 * x1, da2 * h1 + da1 * h0, da2 + da1]
    np.testing.assert_allclose([dh0.item(), dWx.item(), dWh.item(), db.item()], want, rtol=1e-13)


def test_lstm_step_forward_by_hand_gate_order():
    # With zero weights the gates are the bias alone, stacked i, f, g, o.
    b = np.array([1.0, -1.0, 0.5, 2.0])
    h, c, _ = rnn.lstm_step_forward(np.ones((1, 2)), np.ones((1, 1)), np.array([[0.3]]), np.zeros((2, 4)), np.zeros((1, 4)), b)
    c_want = _sigma(-1.0) * 0.3 + _sigma(1.0) * math.tanh(0.5)
    np.testing.assert_allclose(c.item(), c_want, rtol=1e-14)
    np.testing.assert_allclose(h.item(), _sigma(2.0) * math.tanh(c_want), rtol=1e-14)


# ---------------------------------------------------------------- gradient checks


@GRADCHECK
@given(rnn_problems(gates=1), seeds())
def test_rnn_step_gradient(problem, seed):
    x, h0, Wx, Wh, b = problem
    check_backward(rnn.rnn_step_forward, rnn.rnn_step_backward, (x[:, 0], h0, Wx, Wh, b), names=NAMES, rng=np.random.default_rng(seed))


@GRADCHECK
@given(rnn_problems(gates=1), seeds())
def test_rnn_gradient(problem, seed):
    check_backward(rnn.rnn_forward, rnn.rnn_backward, problem, names=NAMES, rng=np.random.default_rng(seed))


@GRADCHECK
@given(rnn_problems(gates=4), seeds())
def test_lstm_step_gradient(problem, seed):
    x, h0, Wx, Wh, b = problem
    rng = np.random.default_rng(seed)
    args = (x[:, 0], h0, rng.standard_normal(h0.shape), Wx, Wh, b)
    check_backward(_lstm_step_joint, _lstm_step_joint_backward, args, names=("x", "h_prev", "c_prev", "Wx", "Wh", "b"), rng=rng)


@GRADCHECK
@given(rnn_problems(gates=4), seeds())
def test_lstm_gradient(problem, seed):
    check_backward(_lstm_pair_forward, _lstm_pair_backward, problem, names=NAMES, rng=np.random.default_rng(seed))


@GRADCHECK
@given(rnn_problems(gates=1), st.integers(1, 5), seeds())
def test_truncated_is_gradient_of_forward_restarted_at_chunk_boundaries(problem, k, seed):
    # Truncated BPTT is the exact gradient of a forward whose chunks start from the boundary
    # states of the real forward, held constant: through them no gradient can flow.
    h_real = rnn.rnn_forward(*problem)[0]
    T = h_real.shape[1]

    def restarted_forward(x, h0, Wx, Wh, b):
        starts = [h0 if s == 0 else h_real[:, s - 1] for s in range(0, T, k)]
        chunks = [rnn.rnn_forward(x[:, s : s + k], h, Wx, Wh, b)[0] for s, h in zip(range(0, T, k), starts)]
        return np.concatenate(chunks, axis=1), rnn.rnn_forward(x, h0, Wx, Wh, b)[1]

    def backward(dh, cache):
        return rnn.rnn_truncated_backward(dh, cache, k)

    check_backward(restarted_forward, backward, problem, names=NAMES, rng=np.random.default_rng(seed))


def test_gradient_check_catches_a_dropped_recurrent_term():
    # k = 1 drops every carried term, so the checker must reject it as the gradient of the full forward.
    problem = _fixed_problem()
    with pytest.raises(AssertionError, match="gradient of"):
        check_backward(rnn.rnn_forward, lambda dh, cache: rnn.rnn_truncated_backward(dh, cache, 1), problem, names=NAMES)


# ---------------------------------------------------------------- sequence = loop of steps


@given(rnn_problems(gates=1), seeds())
def test_rnn_sequence_equals_loop_of_steps(problem, seed):
    x, h0, Wx, Wh, b = problem
    h, cache = rnn.rnn_forward(*problem)
    dh = np.random.default_rng(seed).standard_normal(h.shape)
    h_prev, step_caches = h0, []
    for t in range(x.shape[1]):
        h_prev, step_cache = rnn.rnn_step_forward(x[:, t], h_prev, Wx, Wh, b)
        # Equal up to rounding: the sequence adds b to x Wx before adding h Wh.
        np.testing.assert_allclose(h[:, t], h_prev, rtol=1e-13, atol=1e-15)
        h_prev = h[:, t]
        step_caches.append(step_cache)
    dx, dh0, dWx, dWh, db = rnn.rnn_backward(dh, cache)
    carry, sums = np.zeros_like(h0), [np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)]
    for t in reversed(range(x.shape[1])):
        dx_t, carry, *dparams = rnn.rnn_step_backward(dh[:, t] + carry, step_caches[t])
        np.testing.assert_allclose(dx[:, t], dx_t, rtol=1e-12, atol=1e-14)
        sums = [s + d for s, d in zip(sums, dparams)]
    _assert_grads_close((dh0, dWx, dWh, db), (carry, *sums))


@given(rnn_problems(gates=4), seeds())
def test_lstm_sequence_equals_loop_of_steps(problem, seed):
    x, h0, Wx, Wh, b = problem
    rng = np.random.default_rng(seed)
    c0 = rng.standard_normal(h0.shape)
    h, c_last, cache = rnn.lstm_forward(*problem, c0=c0)
    dh, dc = rng.standard_normal(h.shape), rng.standard_normal(h0.shape)
    h_prev, c_prev, step_caches = h0, c0, []
    for t in range(x.shape[1]):
        h_prev, c_prev, step_cache = rnn.lstm_step_forward(x[:, t], h_prev, c_prev, Wx, Wh, b)
        np.testing.assert_allclose(h[:, t], h_prev, rtol=1e-13, atol=1e-15)
        step_caches.append(step_cache)
    np.testing.assert_allclose(c_last, c_prev, rtol=1e-13, atol=1e-15)
    dx, dh0, dWx, dWh, db, dc0 = rnn.lstm_backward(dh, cache, dc)
    dh_carry, dc_carry, sums = np.zeros_like(h0), dc, [np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)]
    for t in reversed(range(x.shape[1])):
        dx_t, dh_carry, dc_carry, *dparams = rnn.lstm_step_backward(dh[:, t] + dh_carry, dc_carry, step_caches[t])
        np.testing.assert_allclose(dx[:, t], dx_t, rtol=1e-10, atol=1e-12)
        sums = [s + d for s, d in zip(sums, dparams)]
    _assert_grads_close((dh0, dWx, dWh, db, dc0), (dh_carry, *sums, dc_carry), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("forward", [rnn.rnn_forward, _lstm_pair_forward])
def test_batch_equals_stacked_examples(forward):
    # Examples do not interact: the batch forward stacks the examples' outputs, and a shared
    # weight's gradient over the batch is the sum of the examples' gradients.
    backward = rnn.rnn_backward if forward is rnn.rnn_forward else _lstm_pair_backward
    x, h0, Wx, Wh, b = _fixed_problem(N=3, gates=1 if forward is rnn.rnn_forward else 4)
    h, cache = forward(x, h0, Wx, Wh, b)
    dh = np.random.default_rng(1).standard_normal(h.shape)
    dWx, dWh, db = backward(dh, cache)[2:]
    sums = [np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)]
    for n in range(3):
        h_n, cache_n = forward(x[n : n + 1], h0[n : n + 1], Wx, Wh, b)
        np.testing.assert_allclose(h[n : n + 1], h_n, rtol=1e-13, atol=1e-15)
        sums = [s + d for s, d in zip(sums, backward(dh[n : n + 1], cache_n)[2:])]
    _assert_grads_close((dWx, dWh, db), sums, rtol=1e-11, atol=1e-13)


# ---------------------------------------------------------------- purity, linearity, dtypes, extremes


def _all_backwards():
    """(name, forward args, forward, backward(dout, cache)) for every backward of the module."""
    p1, p4 = _fixed_problem(), _fixed_problem(gates=4)
    x1, h1, *w1 = p1
    x4, h4, *w4 = p4
    return [
        ("rnn_step", (x1[:, 0], h1, *w1), rnn.rnn_step_forward, rnn.rnn_step_backward),
        ("rnn", p1, rnn.rnn_forward, rnn.rnn_backward),
        ("rnn_truncated", p1, rnn.rnn_forward, lambda d, c: rnn.rnn_truncated_backward(d, c, 2)),
        ("rnn_random", p1, rnn.rnn_forward, lambda d, c: rnn.rnn_random_truncated_backward(d, c, 0.5, np.random.default_rng(3))),
        ("lstm_step", (x4[:, 0], h4, 0.5 * h4, *w4), _lstm_step_joint, _lstm_step_joint_backward),
        ("lstm", p4, _lstm_pair_forward, _lstm_pair_backward),
    ]


@pytest.mark.parametrize("name, args, forward, backward", _all_backwards(), ids=[c[0] for c in _all_backwards()])
def test_forward_and_backward_do_not_mutate(name, args, forward, backward):
    args_before = copy.deepcopy(args)
    out, cache = forward(*args)
    _assert_same_tree(tuple(args), args_before)
    dout = np.random.default_rng(2).standard_normal(out.shape)
    dout_before, cache_before = dout.copy(), copy.deepcopy(cache)
    first = backward(dout, cache)
    np.testing.assert_array_equal(dout, dout_before)
    _assert_same_tree(cache, cache_before)
    _assert_same_tree(backward(dout, cache), first)  # a second call sees the same cache


@pytest.mark.parametrize("name, args, forward, backward", _all_backwards(), ids=[c[0] for c in _all_backwards()])
def test_backward_is_linear_in_upstream_gradient(name, args, forward, backward):
    out, cache = forward(*args)
    rng = np.random.default_rng(4)
    d1, d2 = rng.standard_normal(out.shape), rng.standard_normal(out.shape)
    combined = backward(2.0 * d1 - 3.0 * d2, cache)
    separate = [2.0 * g1 - 3.0 * g2 for g1, g2 in zip(backward(d1, cache), backward(d2, cache))]
    _assert_grads_close(combined, separate, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("forward, backward, gates", [(rnn.rnn_forward, rnn.rnn_backward, 1), (_lstm_pair_forward, _lstm_pair_backward, 4)])
def test_shapes_and_float32(forward, backward, gates):
    args = tuple(a.astype(np.float32) for a in _fixed_problem(N=2, T=3, D=4, Dh=5, gates=gates))
    h, cache = forward(*args)
    assert h.shape == (2, 3, 5) and h.dtype == np.float32
    grads = backward(np.ones_like(h), cache)
    for g, a in zip(grads, args):
        assert g.shape == a.shape and g.dtype == np.float32


@pytest.mark.parametrize("forward, backward, gates", [(rnn.rnn_forward, rnn.rnn_backward, 1), (_lstm_pair_forward, _lstm_pair_backward, 4)])
def test_extreme_inputs_stay_finite(forward, backward, gates):
    x, h0, Wx, Wh, b = _fixed_problem(gates=gates)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        h, cache = forward(1e3 * x, h0, 1e3 * Wx, Wh, b)
        grads = backward(np.ones_like(h), cache)
    assert np.all(np.isfinite(h)) and np.all(np.abs(h) <= 1)
    assert all(np.all(np.isfinite(g)) for g in grads)


# ---------------------------------------------------------------- truncated BPTT


@given(rnn_problems(gates=1), st.integers(0, 3), seeds())
def test_truncation_with_one_chunk_equals_full_bptt(problem, extra, seed):
    h, cache = rnn.rnn_forward(*problem)
    dh = np.random.default_rng(seed).standard_normal(h.shape)
    for got, want in zip(rnn.rnn_truncated_backward(dh, cache, h.shape[1] + extra), rnn.rnn_backward(dh, cache)):
        np.testing.assert_array_equal(got, want)


@given(rnn_problems(gates=1), seeds())
def test_truncation_with_k1_is_per_step_gradient(problem, seed):
    # With k = 1 every step sees only its own dh_t, as if h_{t-1} were a constant input:
    # da_t = dh_t (1 - h_t^2), dWx = sum_t x_t^T da_t, dWh = sum_t h_{t-1}^T da_t, dh0 = da_1 Wh^T.
    x, h0, Wx, Wh, b = problem
    h, cache = rnn.rnn_forward(*problem)
    dh = np.random.default_rng(seed).standard_normal(h.shape)
    h_before = np.concatenate([h0[:, None], h[:, :-1]], axis=1)  # (N, T, Dh), h_{t-1} for each t
    da = dh * (1 - h**2)
    want = (da @ Wx.T, da[:, 0] @ Wh.T, np.einsum("ntd,nte->de", x, da), np.einsum("ntd,nte->de", h_before, da), da.sum(axis=(0, 1)))
    _assert_grads_close(rnn.rnn_truncated_backward(dh, cache, 1), want, rtol=1e-10, atol=1e-12)


def test_random_truncation_with_p0_equals_full_bptt():
    h, cache = rnn.rnn_forward(*_fixed_problem())
    dh = np.random.default_rng(5).standard_normal(h.shape)
    for got, want in zip(rnn.rnn_random_truncated_backward(dh, cache, 0.0, np.random.default_rng(6)), rnn.rnn_backward(dh, cache)):
        np.testing.assert_array_equal(got, want)


def test_random_truncation_is_random_and_reproducible():
    h, cache = rnn.rnn_forward(*_fixed_problem(T=6))
    dh = np.ones_like(h)
    draws = [rnn.rnn_random_truncated_backward(dh, cache, 0.5, np.random.default_rng(s))[3] for s in range(8)]
    assert any(not np.array_equal(draws[0], d) for d in draws[1:])
    np.testing.assert_array_equal(rnn.rnn_random_truncated_backward(dh, cache, 0.5, np.random.default_rng(0))[3], draws[0])


def test_random_truncation_draws_its_factors_from_rng():
    # The draw is carry[t] = 0 where u_t < p, else 1 / (1 - p), from T uniforms u of the rng, with carry[0] = 1:
    # the same numbers through rnn_backward's carry argument give the same gradients.
    h, cache = rnn.rnn_forward(*_fixed_problem(T=6))
    dh, p = np.random.default_rng(7).standard_normal(h.shape), 0.4
    carry = np.where(np.random.default_rng(11).random(6) < p, 0.0, 1.0 / (1.0 - p))
    carry[0] = 1.0
    got = rnn.rnn_random_truncated_backward(dh, cache, p, np.random.default_rng(11))
    _assert_grads_close(got, rnn.rnn_backward(dh, cache, carry), rtol=0, atol=0)


def _expected_over_cuts(backward, T, p, reweight):
    """E[backward(carry)] over the 2^(T - 1) cut patterns of carry[1..T-1], each cut with probability p, by
    enumeration: the sum of every pattern's gradients weighted by its probability p^cuts (1 - p)^(T - 1 - cuts)."""
    keep = 1.0 / (1.0 - p) if reweight else 1.0
    total = None
    for cuts in itertools.product((True, False), repeat=T - 1):
        carry = np.array([1.0] + [0.0 if c else keep for c in cuts])
        prob = p ** sum(cuts) * (1.0 - p) ** (T - 1 - sum(cuts))
        grads = backward(carry)
        total = [prob * g for g in grads] if total is None else [a + prob * g for a, g in zip(total, grads)]
    return total


@pytest.mark.parametrize("cell", ["rnn", "lstm"])
def test_randomized_truncation_is_unbiased_by_exact_enumeration(cell):
    # Every gradient is a sum of path terms, each multiplied by the factors of the steps it crosses; the factors are
    # independent, so the expectation has each factor replaced by its mean: 1 with reweighting (full BPTT), and
    # 1 - p without (each path damped by (1 - p)^m, the same as the constant carry 1 - p). Fixed chunks are biased.
    T, p = 5, 0.3
    if cell == "rnn":
        h, cache = rnn.rnn_forward(*_fixed_problem(T=T))
        dh = np.random.default_rng(12).standard_normal(h.shape)

        def backward(carry=None):
            return rnn.rnn_backward(dh, cache, carry)
    else:
        h, _, cache = rnn.lstm_forward(*_fixed_problem(T=T, gates=4))
        dh = np.random.default_rng(12).standard_normal(h.shape)

        def backward(carry=None):
            return rnn.lstm_backward(dh, cache, carry=carry)
    full = backward()
    _assert_grads_close(_expected_over_cuts(backward, T, p, reweight=True), full, rtol=1e-12, atol=1e-13)
    damped = _expected_over_cuts(backward, T, p, reweight=False)
    _assert_grads_close(damped, backward(np.array([1.0] + [1.0 - p] * (T - 1))), rtol=1e-12, atol=1e-13)
    assert max(np.abs(a - b).max() for a, b in zip(damped, full)) > 1e-3  # without reweighting: biased
    chunks = backward(np.array([1.0, 1.0, 0.0, 1.0, 0.0]))  # fixed chunks of 2: also biased
    assert max(np.abs(a - b).max() for a, b in zip(chunks, full)) > 1e-3


def test_carry_ones_is_full_bptt_and_zeros_at_chunk_starts_is_truncation():
    h, cache = rnn.rnn_forward(*_fixed_problem(T=6))
    dh = np.random.default_rng(13).standard_normal(h.shape)
    _assert_grads_close(rnn.rnn_backward(dh, cache, np.ones(6)), rnn.rnn_backward(dh, cache), rtol=0, atol=0)
    cut = np.array([1.0, 1.0, 1.0, 0.0, 1.0, 1.0])
    _assert_grads_close(rnn.rnn_backward(dh, cache, cut), rnn.rnn_truncated_backward(dh, cache, 3), rtol=0, atol=0)
    hl, _, cl = rnn.lstm_forward(*_fixed_problem(T=6, gates=4))
    _assert_grads_close(rnn.lstm_backward(dh, cl, carry=np.ones(6)), rnn.lstm_backward(dh, cl), rtol=0, atol=0)


@pytest.mark.parametrize("backward", ["rnn_backward", "lstm_backward"])
@pytest.mark.parametrize("carry, error, match", [
    (np.ones(4), ValueError, r"argument 'carry' must have shape \(3,\), got \(4,\)"),
    (np.ones((3, 1)), ValueError, "argument 'carry' must have 1 dimensions"),
    (np.array([1.0, np.nan, 1.0]), ValueError, "argument 'carry' contains NaN"),
    ("cut", TypeError, "argument 'carry' must be a numpy array"),
])
def test_carry_bad_inputs(backward, carry, error, match):
    forward = rnn.rnn_forward if backward == "rnn_backward" else rnn.lstm_forward
    result = forward(**_valid_args(forward.__name__))
    with pytest.raises(error, match=f"{backward}: {match}"):
        getattr(rnn, backward)(result[0], result[-1], carry=carry)


# ---------------------------------------------------------------- the LSTM's initial cell state


def _lstm_joint_forward(x, h0, Wx, Wh, b, c0):
    # One output (N, T Dh + Dh) = [every h_t, c_T], so that check_backward draws dh and dc together.
    h, c_last, cache = rnn.lstm_forward(x, h0, Wx, Wh, b, c0)
    return np.concatenate([h.reshape(h.shape[0], -1), c_last], axis=1), cache


def _lstm_joint_backward(dout, cache):
    N, T, Dh = cache.h.shape
    return rnn.lstm_backward(dout[:, : T * Dh].reshape(N, T, Dh), cache, dout[:, T * Dh :])


@GRADCHECK
@given(rnn_problems(gates=4), seeds())
def test_lstm_gradient_with_c0_and_the_final_cell_state(problem, seed):
    rng = np.random.default_rng(seed)
    args = (*problem, rng.standard_normal(problem[1].shape))
    check_backward(_lstm_joint_forward, _lstm_joint_backward, args, names=(*NAMES, "c0"), rng=rng)


def test_lstm_c0_continues_a_sequence():
    # Two halves, the second started from the first's final (h, c), give the states of the whole sequence.
    x, h0, Wx, Wh, b = _fixed_problem(T=6, gates=4)
    h, c_last, _ = rnn.lstm_forward(x, h0, Wx, Wh, b)
    h1, c1, _ = rnn.lstm_forward(x[:, :3], h0, Wx, Wh, b)
    h2, c2, _ = rnn.lstm_forward(x[:, 3:], h1[:, -1], Wx, Wh, b, c1)
    np.testing.assert_allclose(np.concatenate([h1, h2], axis=1), h, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(c2, c_last, rtol=1e-13, atol=1e-15)
    with pytest.raises(ValueError, match=r"lstm_forward: argument 'c0' has shape \(2, 4\) but 'h0' has shape"):
        rnn.lstm_forward(x, h0, Wx, Wh, b, np.zeros((2, 4)))
    with pytest.raises(ValueError, match="lstm_backward: argument 'dc' must have shape"):
        rnn.lstm_backward(h, rnn.lstm_forward(x, h0, Wx, Wh, b)[2], np.zeros((2, 4)))


# ---------------------------------------------------------------- streaming truncated BPTT


def _stream(problem, k, dh, cell="rnn", c0=None):
    starts = []

    def chunk_grad(start, h_chunk):
        starts.append((start, h_chunk.shape[1]))
        return dh[:, start : start + h_chunk.shape[1]]

    return rnn.truncated_bptt(*problem, k, chunk_grad, cell=cell, c0=c0), starts


@given(rnn_problems(gates=1), st.integers(1, 5), seeds())
def test_streaming_rnn_equals_truncated_backward(problem, k, seed):
    h, cache = rnn.rnn_forward(*problem)
    dh = np.random.default_rng(seed).standard_normal(h.shape)
    result, starts = _stream(problem, k, dh)
    _, _, *want = rnn.rnn_truncated_backward(dh, cache, k)
    _assert_grads_close(result[:3], want, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(result.h, h[:, -1], rtol=1e-13, atol=1e-15)  # the state was carried
    T = h.shape[1]
    assert starts == [(s, min(k, T - s)) for s in range(0, T, k)] and result.c is None


@given(rnn_problems(gates=4), st.integers(1, 5), seeds())
def test_streaming_lstm_equals_lstm_backward_cut_at_chunk_starts(problem, k, seed):
    rng = np.random.default_rng(seed)
    c0 = rng.standard_normal(problem[1].shape)
    h, c_last, cache = rnn.lstm_forward(*problem, c0)
    dh = rng.standard_normal(h.shape)
    t = np.arange(h.shape[1])
    want = rnn.lstm_backward(dh, cache, carry=np.where((t % k == 0) & (t > 0), 0.0, 1.0))[2:5]
    result, _ = _stream(problem, k, dh, cell="lstm", c0=c0)
    _assert_grads_close(result[:3], want, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(result.h, h[:, -1], rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(result.c, c_last, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("cell", ["rnn", "lstm"])
def test_streaming_with_one_chunk_is_full_bptt(cell):
    problem = _fixed_problem(T=5, gates=4 if cell == "lstm" else 1)
    h = (rnn.rnn_forward if cell == "rnn" else _lstm_pair_forward)(*problem)[0]
    dh = np.random.default_rng(14).standard_normal(h.shape)
    full = (rnn.rnn_backward if cell == "rnn" else _lstm_pair_backward)(dh, (rnn.rnn_forward if cell == "rnn" else
                                                                          _lstm_pair_forward)(*problem)[1])
    for k in (5, 9):
        _assert_grads_close(_stream(problem, k, dh, cell=cell)[0][:3], full[2:], rtol=1e-12, atol=1e-14)


def _peak_bytes(f):
    tracemalloc.start()
    try:
        f()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("cell", ["rnn", "lstm"])
def test_streaming_memory_grows_with_the_chunk_not_the_sequence(cell):
    # Full BPTT keeps every step's state until the backward pass; the stream keeps one chunk of k = 8 steps.
    gates = 4 if cell == "lstm" else 1
    rng = np.random.default_rng(15)
    Wx, Wh, b = 0.3 * rng.standard_normal((3, gates * 16)), 0.3 * rng.standard_normal((16, gates * 16)), np.zeros(gates * 16)
    peaks = {}
    def stream(x, h0):
        return rnn.truncated_bptt(x, h0, Wx, Wh, b, 8, lambda s, h: np.ones_like(h), cell=cell)

    def full(x, h0):
        result = (rnn.rnn_forward if cell == "rnn" else rnn.lstm_forward)(x, h0, Wx, Wh, b)
        return (rnn.rnn_backward if cell == "rnn" else rnn.lstm_backward)(np.ones_like(result[0]), result[-1])

    for T in (64, 512):
        x, h0 = rng.standard_normal((8, T, 3)), np.zeros((8, 16))
        peaks["stream", T] = _peak_bytes(functools.partial(stream, x, h0))
        peaks["full", T] = _peak_bytes(functools.partial(full, x, h0))
    assert peaks["stream", 512] < 1.5 * peaks["stream", 64]
    assert peaks["full", 512] > 6 * peaks["full", 64]
    assert peaks["stream", 512] < peaks["full", 512] / 10


@pytest.mark.parametrize("change, error, match", [
    (dict(cell="gru"), ValueError, "argument 'cell' must be 'rnn' or 'lstm', got 'gru'"),
    (dict(k=0), ValueError, "argument 'k' must be at least 1"),
    (dict(k=2.0), TypeError, "argument 'k' must be an integer"),
    (dict(chunk_grad=None), TypeError, "argument 'chunk_grad' must be a function"),
    (dict(chunk_grad=lambda s, h: h[:, :, :-1]), ValueError, r"argument 'chunk_grad\(0, ...\)' must have shape"),
    (dict(chunk_grad=lambda s, h: np.full(h.shape, np.nan)), ValueError, r"argument 'chunk_grad\(0, ...\)' contains NaN"),
    (dict(chunk_grad=lambda s, h: "grad"), TypeError, r"argument 'chunk_grad\(0, ...\)' must be a numpy array"),
    (dict(c0=np.zeros((2, 5))), ValueError, "argument 'c0' is the LSTM's cell state; the RNN has none"),
    (dict(x=np.ones((2, 3))), ValueError, "argument 'x' must have 3 dimensions"),
])
def test_streaming_bad_inputs(change, error, match):
    args = dict(_valid_args("rnn_forward"), k=2, chunk_grad=lambda s, h: np.ones_like(h), cell="rnn")
    args.update(change)
    with pytest.raises(error, match=f"truncated_bptt: {match}"):
        rnn.truncated_bptt(**args)


def test_streaming_lstm_bad_c0():
    args = dict(_valid_args("lstm_forward"), k=2, chunk_grad=lambda s, h: np.ones_like(h), cell="lstm")
    with pytest.raises(ValueError, match=r"truncated_bptt: argument 'c0' has shape \(2, 4\) but 'h0' has shape"):
        rnn.truncated_bptt(**args, c0=np.zeros((N, Dh - 1)))


# ---------------------------------------------------------------- extreme values, checked once at the boundary


@pytest.mark.parametrize("cell", ["rnn", "lstm"])
def test_saturating_inputs_give_finite_states_and_gradients(cell):
    # Pre-activations near +-1e300 saturate every tanh and sigma exactly: the states stay in [-1, 1] and every
    # local derivative is 0 or 1, so the gradients are finite too (no warning escapes: numpy would raise here).
    x, h0, Wx, Wh, b = _fixed_problem(gates=4 if cell == "lstm" else 1)
    forward, backward = (rnn.rnn_forward, rnn.rnn_backward) if cell == "rnn" else (_lstm_pair_forward, _lstm_pair_backward)
    with np.errstate(all="raise"):
        h, cache = forward(1e300 * x, h0, Wx, Wh, b)
        grads = backward(np.ones_like(h), cache)
    assert np.all(np.abs(h) <= 1) and all(np.all(np.isfinite(g)) for g in grads)


@pytest.mark.parametrize("fn", ["rnn_step_forward", "rnn_forward", "lstm_step_forward", "lstm_forward"])
def test_overflow_to_nan_is_refused_by_the_function_called(fn):
    # x Wx = +inf and h Wh = -inf, so their sum is NaN in every unit: the error names fn, not sigmoid or tanh.
    args = _valid_args(fn)
    h = "h_prev" if "step" in fn else "h0"
    args["x"], args[h] = np.full(args["x"].shape, 1e308), np.full(args[h].shape, 1e308)
    args["Wh"] = -args["Wh"]
    with pytest.raises(ValueError, match=f"^{fn}: the pre-activations x Wx \\+ h Wh \\+ b overflowed to NaN"):
        getattr(rnn, fn)(**args)


@pytest.mark.parametrize("fn", ["rnn_backward", "lstm_backward", "rnn_step_backward", "lstm_step_backward"])
def test_gradients_beyond_the_float_range_are_refused(fn):
    forward = getattr(rnn, fn.replace("backward", "forward"))
    x, h0, Wx, Wh, b = _fixed_problem(gates=4 if "lstm" in fn else 1)
    x, Wx = 1e300 * x, 1e-300 * Wx  # ordinary pre-activations, so dWx = x^T da ~ 1e300 * 1e308 overflows
    args = (x[:, 0], h0, h0, Wx, Wh, b) if fn == "lstm_step_backward" else (x[:, 0] if "step" in fn else x, h0, Wx, Wh, b)
    result = forward(*args)
    huge = np.full(result[0].shape, 1e308)
    with pytest.raises(ValueError, match=f"^{fn}: the gradients overflow float64"):
        if fn == "lstm_step_backward":
            rnn.lstm_step_backward(huge, huge, result[-1])
        else:
            getattr(rnn, fn)(huge, result[-1])


def test_float32_stays_float32_with_carry_and_streaming():
    args = tuple(a.astype(np.float32) for a in _fixed_problem(T=4))
    h, cache = rnn.rnn_forward(*args)
    grads = rnn.rnn_backward(np.ones_like(h), cache, np.array([1.0, 0.5, 0.0, 2.0]))
    assert all(g.dtype == np.float32 for g in grads)
    result = rnn.truncated_bptt(*args, 2, lambda s, hc: np.ones_like(hc))
    assert all(g.dtype == np.float32 for g in result[:4])


# ---------------------------------------------------------------- gradient clipping


def _global_norm(grads):
    return math.sqrt(sum(float(np.sum(g.astype(np.float64) ** 2)) for g in grads.values()))


@given(seeds(), st.floats(0.1, 10.0))
def test_clip_grad_norm_bounds_norm_and_keeps_direction(seed, max_norm):
    rng = np.random.default_rng(seed)
    grads = {"Wx": rng.standard_normal((3, 4)), "Wh": rng.standard_normal((4, 4)), "b": rng.standard_normal(4)}
    before = copy.deepcopy(grads)
    clipped, total = rnn.clip_grad_norm(grads, max_norm)
    norm = _global_norm(grads)
    assert math.isclose(total, norm, rel_tol=1e-12)
    assert math.isclose(_global_norm(clipped), min(norm, max_norm), rel_tol=1e-12)
    scale = min(1.0, max_norm / norm)  # one factor for all arrays: the direction is kept
    for name in grads:
        np.testing.assert_allclose(clipped[name], scale * grads[name], rtol=1e-12)
        np.testing.assert_array_equal(grads[name], before[name])
        assert clipped[name] is not grads[name]


def test_clip_grad_norm_leaves_small_and_boundary_gradients_alone():
    grads = {"a": np.array([3.0]), "b": np.array([[4.0]])}  # global norm exactly 5
    for max_norm in (5.0, 100.0):
        clipped, total = rnn.clip_grad_norm(grads, max_norm)
        assert total == 5.0
        for name in grads:
            np.testing.assert_array_equal(clipped[name], grads[name])
            assert clipped[name] is not grads[name]


def test_clip_grad_norm_scales_to_the_bound_by_hand():
    # Norm 5 clipped to 1: every entry is divided by 5.
    clipped, total = rnn.clip_grad_norm({"a": np.array([3.0]), "b": np.array([[4.0]])}, 1.0)
    assert total == 5.0
    np.testing.assert_allclose(clipped["a"], [0.6], rtol=1e-15)
    np.testing.assert_allclose(clipped["b"], [[0.8]], rtol=1e-15)


def test_clip_grad_norm_beyond_the_float_range():
    # ||g|| = 1e308 sqrt(5) overflows float64: the total is inf, but the clipped arrays are g max_norm / ||g||.
    clipped, total = rnn.clip_grad_norm({"a": np.full(3, 1e308), "b": np.full(2, -1e308)}, 2.0)
    assert total == math.inf
    np.testing.assert_allclose(clipped["a"], np.full(3, 2.0 / math.sqrt(5)), rtol=1e-12)
    np.testing.assert_allclose(clipped["b"], np.full(2, -2.0 / math.sqrt(5)), rtol=1e-12)


def test_clip_grad_norm_extremes_zero_empty_and_float32():
    clipped, total = rnn.clip_grad_norm({"a": np.array([3e200, 4e200])}, 1.0)  # the squares would overflow
    assert math.isclose(total, 5e200, rel_tol=1e-12)
    np.testing.assert_allclose(clipped["a"], [0.6, 0.8], rtol=1e-12)
    assert math.isclose(rnn.clip_grad_norm({"a": np.array([3e-200, 4e-200])}, 1.0)[1], 5e-200, rel_tol=1e-12)  # would underflow
    clipped, total = rnn.clip_grad_norm({"a": np.zeros(3), "b": np.zeros((0, 2))}, 1.0)
    assert total == 0.0 and np.array_equal(clipped["a"], np.zeros(3)) and clipped["b"].shape == (0, 2)
    assert rnn.clip_grad_norm({}, 1.0) == ({}, 0.0)
    clipped, _ = rnn.clip_grad_norm({"a": np.full(4, 10.0, dtype=np.float32)}, 1.0)
    assert clipped["a"].dtype == np.float32
    np.testing.assert_allclose(clipped["a"], np.full(4, 0.5), rtol=1e-6)


@pytest.mark.parametrize(
    "grads, max_norm, error, match",
    [
        ([np.ones(2)], 1.0, TypeError, "clip_grad_norm: argument 'grads' must be a dict"),
        ({"a": np.ones(2)}, 0.0, ValueError, r"clip_grad_norm: argument 'max_norm' must lie in \(0"),
        ({"a": np.ones(2)}, -1.0, ValueError, "clip_grad_norm: argument 'max_norm' must lie in"),
        ({"a": np.ones(2)}, float("nan"), TypeError, "clip_grad_norm: argument 'max_norm' must be a finite real"),
        ({"a": np.ones(2)}, "1", TypeError, "clip_grad_norm: argument 'max_norm' must be a finite real"),
        ({"a": np.array([1.0, np.nan])}, 1.0, ValueError, r"clip_grad_norm: argument 'grads\['a'\]' contains NaN"),
        ({"a": "grad"}, 1.0, TypeError, r"clip_grad_norm: argument 'grads\['a'\]' must be a numpy array"),
    ],
)
def test_clip_grad_norm_bad_inputs(grads, max_norm, error, match):
    with pytest.raises(error, match=match):
        rnn.clip_grad_norm(grads, max_norm)


# ---------------------------------------------------------------- bad inputs

N, T, D, Dh = 2, 3, 4, 5


def _valid_args(fn):
    gates = 4 if fn.startswith("lstm") else 1
    step = "step" in fn
    args = {"x": np.ones((N, D) if step else (N, T, D)), "h_prev" if step else "h0": np.ones((N, Dh))}
    if fn == "lstm_step_forward":
        args["c_prev"] = np.ones((N, Dh))
    args.update(Wx=np.ones((D, gates * Dh)), Wh=np.ones((Dh, gates * Dh)), b=np.ones(gates * Dh))
    return args


def _shape(s):
    return re.escape(str(s))


def _forward_cases():
    cases = []
    for fn in ("rnn_step_forward", "rnn_forward", "lstm_step_forward", "lstm_forward"):
        args = _valid_args(fn)
        h = "h_prev" if "step" in fn else "h0"
        G, xs = args["Wh"].shape[1], args["x"].shape
        wh = _shape(args["Wh"].shape)
        table = [
            ("x", np.ones(xs + (1,)), ValueError, f"argument 'x' must have {len(xs)} dimensions"),
            (h, np.ones((N, Dh, 1)), ValueError, f"argument '{h}' must have 2 dimensions"),
            ("Wx", np.ones(D), ValueError, "argument 'Wx' must have 2 dimensions"),
            ("Wh", np.ones(Dh), ValueError, "argument 'Wh' must have 2 dimensions"),
            ("b", np.ones((1, G)), ValueError, "argument 'b' must have 1 dimensions"),
            ("Wh", np.ones((Dh, G + 1)), ValueError, f"argument 'Wh' must have shape {_shape((Dh, G))}, got {_shape((Dh, G + 1))}"),
            ("Wx", np.ones((D + 1, G)), ValueError, f"argument 'x' has shape {_shape(xs)} but 'Wx' has shape {_shape((D + 1, G))}"),
            ("Wx", np.ones((D, G + 1)), ValueError, f"argument 'Wx' has shape {_shape((D, G + 1))} but 'Wh' has shape {wh}"),
            ("b", np.ones(G + 1), ValueError, f"argument 'b' has shape {_shape((G + 1,))} but 'Wh' has shape {wh}"),
            (h, np.ones((N + 1, Dh)), ValueError, f"argument '{h}' has shape {_shape((N + 1, Dh))} but 'x' has shape {_shape(xs)}"),
            (h, np.ones((N, Dh + 1)), ValueError, f"argument '{h}' has shape {_shape((N, Dh + 1))} but 'Wh' has shape {wh}"),
            ("x", "text", TypeError, "argument 'x' must be a numpy array"),
            ("Wh", np.full(args["Wh"].shape, np.nan), ValueError, "argument 'Wh' contains NaN"),
        ]
        if "step" not in fn:
            table.append(("x", np.ones((N, 0, D)), ValueError, "argument 'x' must have at least one time step"))
        if fn == "lstm_step_forward":
            table.append(("c_prev", np.ones(Dh), ValueError, "argument 'c_prev' must have 2 dimensions"))
            table.append(("c_prev", np.ones((N, Dh + 1)), ValueError, f"argument 'c_prev' has shape {_shape((N, Dh + 1))} but 'h_prev'"))
        cases += [(fn, name, value, error, f"{fn}: {match}") for name, value, error, match in table]
    return cases


@pytest.mark.parametrize("fn, name, value, error, match", _forward_cases())
def test_forward_bad_inputs(fn, name, value, error, match):
    args = _valid_args(fn)
    args[name] = value
    with pytest.raises(error, match=match):
        getattr(rnn, fn)(**args)


def _sequence_backwards():
    return {
        "rnn_backward": (rnn.rnn_forward, rnn.rnn_backward),
        "lstm_backward": (rnn.lstm_forward, lambda d, c: rnn.lstm_backward(d, c)),
        "rnn_truncated_backward": (rnn.rnn_forward, lambda d, c: rnn.rnn_truncated_backward(d, c, 2)),
        "rnn_random_truncated_backward": (
            rnn.rnn_forward,
            lambda d, c: rnn.rnn_random_truncated_backward(d, c, 0.5, np.random.default_rng(0)),
        ),
    }


@pytest.mark.parametrize("fn", list(_sequence_backwards()))
def test_sequence_backward_bad_inputs(fn):
    forward, backward = _sequence_backwards()[fn]
    other = rnn.lstm_forward if forward is rnn.rnn_forward else rnn.rnn_forward
    result = forward(**_valid_args(forward.__name__))
    h, cache = result[0], result[-1]
    with pytest.raises(ValueError, match=rf"{fn}: argument 'dh' must have shape \(2, 3, 5\), got \(2, 3, 4\)"):
        backward(np.ones((N, T, Dh - 1)), cache)
    with pytest.raises(ValueError, match=f"{fn}: argument 'dh' must have 3 dimensions"):
        backward(np.ones((N, Dh)), cache)
    with pytest.raises(ValueError, match=f"{fn}: argument 'dh' contains NaN"):
        backward(np.full(h.shape, np.nan), cache)
    with pytest.raises(TypeError, match=f"{fn}: argument 'cache'"):
        backward(h, cache[0])
    with pytest.raises(TypeError, match=f"{fn}: argument 'cache' must be the (Rnn|Lstm)Cache that {forward.__name__} "
                       f"returns, got a (Lstm|Rnn)Cache from {other.__name__}"):
        backward(h, other(**_valid_args(other.__name__))[-1])  # an RNN cache given to the LSTM, or back
    with pytest.raises(TypeError, match=f"{fn}: argument 'cache'"):
        backward(h, ((),))


def test_step_backward_bad_inputs():
    h, cache = rnn.rnn_step_forward(**_valid_args("rnn_step_forward"))
    with pytest.raises(ValueError, match=r"rnn_step_backward: argument 'dh_next' must have shape \(2, 5\), got \(2, 4\)"):
        rnn.rnn_step_backward(np.ones((N, Dh - 1)), cache)
    with pytest.raises(TypeError, match="rnn_step_backward: argument 'cache'"):
        rnn.rnn_step_backward(h, cache[:4])
    h, c, cache = rnn.lstm_step_forward(**_valid_args("lstm_step_forward"))
    with pytest.raises(ValueError, match=r"lstm_step_backward: argument 'dh_next' must have shape \(2, 5\), got \(2, 4\)"):
        rnn.lstm_step_backward(np.ones((N, Dh - 1)), c, cache)
    with pytest.raises(ValueError, match=r"lstm_step_backward: argument 'dc_next' must have 2 dimensions, got shape \(5,\)"):
        rnn.lstm_step_backward(h, np.ones(Dh), cache)
    with pytest.raises(ValueError, match=r"lstm_step_backward: argument 'dc_next' must have shape \(2, 5\), got \(2, 4\)"):
        rnn.lstm_step_backward(h, np.ones((N, Dh - 1)), cache)
    with pytest.raises(TypeError, match="lstm_step_backward: argument 'dc_next'"):
        rnn.lstm_step_backward(h, "c", cache)
    with pytest.raises(TypeError, match="lstm_step_backward: argument 'cache'"):
        rnn.lstm_step_backward(h, c, [cache])


@pytest.mark.parametrize(
    "k, error, match",
    [
        (0, ValueError, "argument 'k' must be at least 1"),
        (1.5, TypeError, "argument 'k' must be an integer"),
        (True, TypeError, "argument 'k' must be an integer"),
    ],
)
def test_truncated_backward_bad_k(k, error, match):
    h, cache = rnn.rnn_forward(**_valid_args("rnn_forward"))
    with pytest.raises(error, match=f"rnn_truncated_backward: {match}"):
        rnn.rnn_truncated_backward(h, cache, k)


@pytest.mark.parametrize(
    "p, rng, error, match",
    [
        (1.0, np.random.default_rng(0), ValueError, r"argument 'p' must lie in \[0, 1\)"),
        (-0.1, np.random.default_rng(0), ValueError, r"argument 'p' must lie in \[0, 1\)"),
        ("0.5", np.random.default_rng(0), TypeError, "argument 'p' must be a finite real number"),
        (0.5, 0, TypeError, "argument 'rng' must be a numpy Generator"),
        (0.5, np.random.RandomState(0), TypeError, "argument 'rng' must be a numpy Generator"),
    ],
)
def test_random_truncated_backward_bad_inputs(p, rng, error, match):
    h, cache = rnn.rnn_forward(**_valid_args("rnn_forward"))
    with pytest.raises(error, match=f"rnn_random_truncated_backward: {match}"):
        rnn.rnn_random_truncated_backward(h, cache, p, rng)


# ---------------------------------------------------------------- the caches' step views


@pytest.mark.parametrize("cell", ["rnn", "lstm"])
def test_sequence_cache_steps_are_the_step_caches(cell):
    # cache.steps gives one step cache per step, equal to what the step forward returns, so that a loop of
    # step backwards over them is the sequence backward (the practice checker relies on it).
    x, h0, Wx, Wh, b = _fixed_problem(T=4, gates=4 if cell == "lstm" else 1)
    if cell == "rnn":
        h, cache = rnn.rnn_forward(x, h0, Wx, Wh, b)
        h_prev, want = h0, []
        for t in range(4):
            h_prev, step = rnn.rnn_step_forward(x[:, t], h_prev, Wx, Wh, b)
            want.append(step)
    else:
        h, _, cache = rnn.lstm_forward(x, h0, Wx, Wh, b)
        h_prev, c_prev, want = h0, np.zeros_like(h0), []
        for t in range(4):
            h_prev, c_prev, step = rnn.lstm_step_forward(x[:, t], h_prev, c_prev, Wx, Wh, b)
            want.append(step)
    assert len(cache.steps) == 4
    for got, ref in zip(cache.steps, want):
        assert type(got) is type(ref)
        for a, w in zip(got, ref):
            np.testing.assert_allclose(a, w, rtol=1e-13, atol=1e-15)
