"""Tests of bplib.losses (chapter 1): values, gradients, stability, bad input."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import as_matrix, batch_shapes, float_arrays, hostile_arrays, seeds

from bplib import losses
from bplib.activations import sigmoid
from bplib.gradcheck import check_backward

BCE = losses.binary_cross_entropy
BCE_LOGITS = losses.binary_cross_entropy_with_logits


def test_half_squared_error_by_hand():
    # ((1-0)^2 + (2-0)^2 + (0-3)^2) / 2 / N with N = 2: (1 + 4 + 9) / 4 = 3.5
    y = np.array([[1.0, 2.0], [0.0, 0.0]])
    t = np.array([[0.0, 0.0], [3.0, 0.0]])
    assert losses.half_squared_error(y, t) == 3.5


def test_bce_by_hand():
    # One example, p = 0.8, t = 1: -log 0.8; another, p = 0.25, t = 0: -log 0.75.
    p, t = np.array([0.8, 0.25]), np.array([1.0, 0.0])
    assert BCE(p, t) == pytest.approx(-(np.log(0.8) + np.log(0.75)) / 2, rel=1e-14)


@given(shape=batch_shapes, seed=seeds())
def test_logits_form_equals_probability_form(shape, seed):
    rng = np.random.default_rng(seed)
    z, t = rng.uniform(-10, 10, shape), rng.random(shape)
    assert BCE_LOGITS(z, t) == pytest.approx(BCE(sigmoid(z), t), rel=1e-9, abs=1e-12)


@given(shape=batch_shapes, seed=seeds())
def test_gradient_checks(shape, seed):
    rng = np.random.default_rng(seed)
    y, t = rng.standard_normal(shape), rng.standard_normal(shape)
    check_backward(losses.half_squared_error_forward, losses.half_squared_error_backward, (y, t), wrt=(0,), names=("y",), rng=rng)
    p, t01 = rng.uniform(0.05, 0.95, shape), rng.random(shape)
    check_backward(losses.binary_cross_entropy_forward, losses.binary_cross_entropy_backward, (p, t01), wrt=(0,), names=("p",), rng=rng)
    check_backward(
        losses.binary_cross_entropy_with_logits_forward, losses.binary_cross_entropy_with_logits_backward,
        (y * 3, t01), wrt=(0,), names=("z",), rng=rng,
    )


@given(z=float_arrays(batch_shapes), seed=seeds())
def test_logits_gradient_is_sigmoid_minus_target_over_n(z, seed):
    t = np.random.default_rng(seed).random(z.shape)
    _, cache = losses.binary_cross_entropy_with_logits_forward(z, t)
    np.testing.assert_allclose(losses.binary_cross_entropy_with_logits_backward(1.0, cache), (sigmoid(z) - t) / z.shape[0], atol=1e-15)


def test_loss_is_a_mean_over_the_batch():
    rng = np.random.default_rng(1)
    y, t = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    singles = [losses.half_squared_error(y[i:i + 1], t[i:i + 1]) for i in range(4)]
    assert losses.half_squared_error(y, t) == pytest.approx(np.mean(singles), rel=1e-14)
    z = rng.standard_normal((4, 3))
    t01 = rng.random((4, 3))
    assert BCE_LOGITS(z, t01) == pytest.approx(np.mean([BCE_LOGITS(z[i:i + 1], t01[i:i + 1]) for i in range(4)]), rel=1e-14)


def test_extremes_stay_finite():
    z = np.array([-1e4, -1000.0, 0.0, 1000.0, 1e4])
    t = np.array([1.0, 1.0, 0.5, 0.0, 1.0])
    loss, cache = losses.binary_cross_entropy_with_logits_forward(z, t)
    # z = -1e4 with t = 1 costs 1e4, z = 1000 with t = 0 costs 1000, z = 0 costs log 2.
    assert loss == pytest.approx((1e4 + 1000 + 1000 + np.log(2)) / 5, rel=1e-12)
    assert np.all(np.isfinite(losses.binary_cross_entropy_with_logits_backward(1.0, cache)))
    p = np.array([0.0, 1.0, 0.0, 1.0])
    t = np.array([0.0, 1.0, 1.0, 0.0])
    loss, cache = losses.binary_cross_entropy_forward(p, t)
    assert np.isfinite(loss) and loss > 10  # the wrong certain answers cost about -log(1e-12) each
    assert np.all(np.isfinite(losses.binary_cross_entropy_backward(1.0, cache)))


def test_dloss_scales_the_gradient():
    y, t = np.array([[1.0, -1.0]]), np.zeros((1, 2))
    _, cache = losses.half_squared_error_forward(y, t)
    np.testing.assert_array_equal(losses.half_squared_error_backward(2.0, cache), 2.0 * y)


FORWARDS = [losses.half_squared_error_forward, losses.binary_cross_entropy_forward, losses.binary_cross_entropy_with_logits_forward]
BACKWARDS = [losses.half_squared_error_backward, losses.binary_cross_entropy_backward, losses.binary_cross_entropy_with_logits_backward]


@pytest.mark.parametrize("forward", FORWARDS)
def test_mismatched_shapes_name_both(forward):
    with pytest.raises(ValueError, match=r"has shape \(2, 3\) but 't' has shape \(3, 2\)"):
        forward(np.full((2, 3), 0.5), np.full((3, 2), 0.5))


@pytest.mark.parametrize("forward", FORWARDS)
def test_scalar_prediction_is_refused(forward):
    with pytest.raises(ValueError, match="must have a batch axis"):
        forward(0.5, 0.5)


@pytest.mark.parametrize("forward", FORWARDS)
def test_wrong_dtype_and_nan_are_refused(forward):
    with pytest.raises(TypeError, match="dtype"):
        forward(np.array(["a", "b"]), np.zeros(2))
    with pytest.raises(ValueError, match="NaN"):
        forward(np.array([0.5, np.nan]), np.zeros(2))
    with pytest.raises(ValueError, match="'t' contains NaN"):
        forward(np.array([0.5, 0.5]), np.array([0.0, np.nan]))


@pytest.mark.parametrize("forward", FORWARDS[1:])
def test_targets_outside_zero_one_are_refused(forward):
    with pytest.raises(ValueError, match="'t' must hold values in"):
        forward(np.array([0.5]), np.array([2.0]))


def test_probabilities_outside_zero_one_are_refused():
    with pytest.raises(ValueError, match="'p' must hold values in"):
        BCE(np.array([1.5]), np.array([1.0]))


@pytest.mark.parametrize("forward, backward", list(zip(FORWARDS, BACKWARDS)))
def test_backward_rejects_bad_dloss_and_cache(forward, backward):
    _, cache = forward(np.full((2, 1), 0.5), np.full((2, 1), 0.5))
    with pytest.raises(TypeError, match="'dloss'"):
        backward(np.ones((2, 1)), cache)
    with pytest.raises(TypeError, match="'dloss'"):
        backward(float("nan"), cache)
    with pytest.raises(TypeError, match="'cache'"):
        backward(1.0, (cache[0],))


# --- softmax, log-softmax and softmax cross-entropy (chapter 6) ---

SCE = losses.softmax_cross_entropy


def _labels_for(z, rng):
    return rng.integers(0, z.shape[1], size=z.shape[0])


def test_softmax_by_hand():
    # exp(0), exp(ln 2), exp(ln 5) are 1, 2, 5: softmax is (1, 2, 5) / 8.
    z = np.log(np.array([[1.0, 2.0, 5.0]]))
    np.testing.assert_allclose(losses.softmax(z), [[0.125, 0.25, 0.625]], rtol=1e-14)
    # Cross-entropy of label 2 is -log(5/8).
    assert SCE(z, np.array([2])) == pytest.approx(-np.log(0.625), rel=1e-14)


@given(z=float_arrays(batch_shapes), shift=st.floats(-100, 100))
def test_softmax_rows_sum_to_one_and_are_shift_invariant(z, shift):
    s = losses.softmax(z)
    np.testing.assert_allclose(s.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(losses.softmax(z + shift), s, rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(np.exp(losses.log_softmax(z)), s, rtol=1e-12)


@given(shape=batch_shapes, seed=seeds())
def test_softmax_pairs_pass_gradient_checks(shape, seed):
    rng = np.random.default_rng(seed)
    z = rng.standard_normal(shape) * 2
    check_backward(losses.softmax_forward, losses.softmax_backward, (z,), names=("z",), rng=rng)
    check_backward(losses.log_softmax_forward, losses.log_softmax_backward, (z,), names=("z",), rng=rng)
    y = _labels_for(z, rng)
    check_backward(losses.softmax_cross_entropy_forward, losses.softmax_cross_entropy_backward, (z, y), wrt=(0,), names=("z",), rng=rng)


@given(shape=batch_shapes, seed=seeds())
def test_fused_gradient_equals_the_chain_through_the_jacobian(shape, seed):
    rng = np.random.default_rng(seed)
    z = rng.standard_normal(shape)
    y = _labels_for(z, rng)
    _, cache = losses.softmax_cross_entropy_forward(z, y)
    fused = losses.softmax_cross_entropy_backward(1.0, cache)
    # The long way: L = -(1/N) sum log s[n, y_n], so dL/ds = -onehot / (N s); then
    # apply the full Jacobian diag(s) - s s^T of each row, formed explicitly.
    s = losses.softmax(z)
    ds = -losses.onehot(y, shape[1]) / (shape[0] * s)
    chained = np.stack([(np.diag(s_n) - np.outer(s_n, s_n)) @ ds_n for s_n, ds_n in zip(s, ds)])
    np.testing.assert_allclose(fused, chained, atol=1e-12)


def test_extreme_logits_stay_finite():
    z = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4], [1000.0, 1000.0, -1000.0]])
    y = np.array([1, 0, 2])
    loss, cache = losses.softmax_cross_entropy_forward(z, y)
    # Row 1 costs 2e4 (label logit 2e4 below the max), row 2 costs log 3,
    # row 3 costs 2000 + log 2; by hand from the log-sum-exp.
    assert loss == pytest.approx((2e4 + np.log(3) + 2000 + np.log(2)) / 3, rel=1e-12)
    grads = losses.softmax_cross_entropy_backward(1.0, cache)
    assert np.all(np.isfinite(grads))
    assert np.all(np.isfinite(losses.softmax(z))) and np.all(np.isfinite(losses.log_softmax(z)))


def test_onehot():
    np.testing.assert_array_equal(losses.onehot(np.array([2, 0]), 3), [[0, 0, 1], [1, 0, 0]])
    with pytest.raises(TypeError, match="'K' must be an integer"):
        losses.onehot(np.array([0]), 2.0)
    with pytest.raises(ValueError, match="outside"):
        losses.onehot(np.array([3]), 3)


@pytest.mark.parametrize("fn", [losses.softmax, losses.log_softmax, losses.softmax_forward, losses.log_softmax_forward])
def test_softmax_rejects_bad_logits(fn):
    with pytest.raises(ValueError, match="'z' must have a class axis"):
        fn(1.0)
    with pytest.raises(TypeError, match="'z'"):
        fn(np.array(["a"]))
    with pytest.raises(ValueError, match="'z' contains NaN"):
        fn(np.array([[np.nan, 0.0]]))


@pytest.mark.parametrize("forward, backward, name", [
    (losses.softmax_forward, losses.softmax_backward, "ds' has shape \\(3, 2\\) but 's'"),
    (losses.log_softmax_forward, losses.log_softmax_backward, "dout' has shape \\(3, 2\\) but 'out'"),
])
def test_softmax_backward_rejects_wrong_shapes(forward, backward, name):
    _, cache = forward(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=name):
        backward(np.zeros((3, 2)), cache)
    with pytest.raises(TypeError, match="'cache'"):
        backward(np.zeros((2, 3)), ())


def test_cross_entropy_rejects_bad_labels():
    z = np.zeros((2, 3))
    with pytest.raises(TypeError, match="'y' must be an integer numpy array"):
        SCE(z, np.array([0.0, 1.0]))
    with pytest.raises(TypeError, match="'y' must be an integer numpy array"):
        SCE(z, [0, 1])
    with pytest.raises(ValueError, match=r"'y' must have shape \(N,\) = \(2,\) to match 'z' of shape \(2, 3\), got \(3,\)"):
        SCE(z, np.array([0, 1, 2]))
    with pytest.raises(ValueError, match=r"outside \[0, K\) = \[0, 3\)"):
        SCE(z, np.array([0, 3]))
    with pytest.raises(ValueError, match="outside"):
        SCE(z, np.array([-1, 0]))
    with pytest.raises(ValueError, match=r"'z' must have shape \(N, K\)"):
        SCE(np.zeros((2, 3, 1)), np.array([0, 1]))


def test_cross_entropy_backward_rejects_bad_dloss_and_cache():
    _, cache = losses.softmax_cross_entropy_forward(np.zeros((2, 3)), np.array([0, 1]))
    with pytest.raises(TypeError, match="'dloss'"):
        losses.softmax_cross_entropy_backward(np.ones(2), cache)
    with pytest.raises(TypeError, match="'cache'"):
        losses.softmax_cross_entropy_backward(1.0, (cache[0],))


# --- properties shared by the pairs: float32, no mutation, linearity in the upstream gradient ---

LOSS_PAIRS = [
    (losses.half_squared_error_forward, losses.half_squared_error_backward, lambda r: r.standard_normal((3, 2))),
    (losses.binary_cross_entropy_forward, losses.binary_cross_entropy_backward, lambda r: r.random((3, 2))),
    (losses.binary_cross_entropy_with_logits_forward, losses.binary_cross_entropy_with_logits_backward,
     lambda r: r.standard_normal((3, 2))),
]


@pytest.mark.parametrize("forward, backward, draw", LOSS_PAIRS)
def test_float32_losses_keep_float32_gradients(forward, backward, draw):
    rng = np.random.default_rng(0)
    pred, t = draw(rng).astype(np.float32), rng.random((3, 2)).astype(np.float32)
    loss, cache = forward(pred, t)
    dpred = backward(1.0, cache)
    assert isinstance(loss, float) and dpred.dtype == np.float32
    _, cache64 = forward(pred.astype(np.float64), t.astype(np.float64))
    np.testing.assert_allclose(dpred, backward(1.0, cache64), rtol=1e-5)


def test_float32_probability_bce_at_zero_and_one_stays_finite():
    # In float32 1 - 1e-12 rounds to 1, where log(1 - p) and 1 / (1 - p) blow up; the clip
    # keeps p below 1. A wrong certain answer then costs -log(1 - q), q = 1 - 2^-24,
    # that is 24 log 2, about 16.6 (float64: -log(1e-12), about 27.6).
    p = np.array([[1.0], [0.0], [1.0]], dtype=np.float32)
    t = np.array([[1.0], [0.0], [0.0]], dtype=np.float32)
    loss, cache = losses.binary_cross_entropy_forward(p, t)
    assert loss == pytest.approx(24 * np.log(2) / 3, rel=1e-3)
    dp = losses.binary_cross_entropy_backward(1.0, cache)
    assert dp.dtype == np.float32 and np.all(np.isfinite(dp))


@pytest.mark.parametrize("forward, backward", [
    (losses.softmax_forward, losses.softmax_backward),
    (losses.log_softmax_forward, losses.log_softmax_backward),
])
@given(z=float_arrays(batch_shapes), seed=seeds())
def test_softmax_backward_is_linear_in_dout_and_mutates_nothing(forward, backward, z, seed):
    rng = np.random.default_rng(seed)
    z_before = z.copy()
    out, cache = forward(z)
    cache_before = [c.copy() for c in cache]
    d1, d2 = rng.standard_normal(out.shape), rng.standard_normal(out.shape)
    d1_before = d1.copy()
    np.testing.assert_allclose(backward(2 * d1 - 3 * d2, cache), 2 * backward(d1, cache) - 3 * backward(d2, cache), atol=1e-12)
    np.testing.assert_array_equal(z, z_before)
    np.testing.assert_array_equal(d1, d1_before)
    for c, c0 in zip(cache, cache_before):
        np.testing.assert_array_equal(c, c0)


@pytest.mark.parametrize("forward, backward, draw", LOSS_PAIRS)
def test_loss_backward_mutates_nothing(forward, backward, draw):
    rng = np.random.default_rng(1)
    pred, t = draw(rng), rng.random((3, 2))
    pred_before, t_before = pred.copy(), t.copy()
    _, cache = forward(pred, t)
    cache_before = [c.copy() if isinstance(c, np.ndarray) else c for c in cache]
    backward(0.5, cache)
    np.testing.assert_array_equal(pred, pred_before)
    np.testing.assert_array_equal(t, t_before)
    for c, c0 in zip(cache, cache_before):
        np.testing.assert_array_equal(c, c0)
    z, y = rng.standard_normal((3, 4)), np.array([0, 3, 1])
    _, cache = losses.softmax_cross_entropy_forward(z, y)
    s_before = cache[0].copy()
    losses.softmax_cross_entropy_backward(1.0, cache)
    np.testing.assert_array_equal(cache[0], s_before)


# --- hostile input and the float range (issue 13) ---

MAX = np.finfo(np.float64).max
ELEMENTWISE = {  # name -> (function, prediction name, target name, valid prediction)
    "half_squared_error": (losses.half_squared_error, "y", "t", np.full((2, 3), 0.5)),
    "half_squared_error_forward": (losses.half_squared_error_forward, "y", "t", np.full((2, 3), 0.5)),
    "binary_cross_entropy": (BCE, "p", "t", np.full((2, 3), 0.5)),
    "binary_cross_entropy_forward": (losses.binary_cross_entropy_forward, "p", "t", np.full((2, 3), 0.5)),
    "binary_cross_entropy_with_logits": (BCE_LOGITS, "z", "t", np.full((2, 3), 0.5)),
    "binary_cross_entropy_with_logits_forward": (losses.binary_cross_entropy_with_logits_forward, "z", "t", np.full((2, 3), 0.5)),
}


@pytest.mark.parametrize("fn", list(ELEMENTWISE))
@pytest.mark.parametrize("which", [0, 1])
@pytest.mark.parametrize("case", list(hostile_arrays()))
def test_elementwise_losses_refuse_hostile_input_by_their_own_name(fn, which, case):
    f, pred, target, good = ELEMENTWISE[fn]
    args = [good, np.full((2, 3), 0.5)]
    args[which], error = hostile_arrays()[case]
    with pytest.raises(error, match=f"^{fn}: argument '{(pred, target)[which]}'"):
        f(*args)


@pytest.mark.parametrize("fn", ["softmax", "softmax_forward", "log_softmax", "log_softmax_forward",
                                "softmax_cross_entropy", "softmax_cross_entropy_forward"])
@pytest.mark.parametrize("case", list(hostile_arrays()))
def test_softmax_family_refuses_hostile_logits_by_its_own_name(fn, case):
    value, error = hostile_arrays()[case]
    args = (value, np.array([0, 2])) if "cross_entropy" in fn else (value,)
    with pytest.raises(error, match=f"^{fn}: argument 'z'"):
        getattr(losses, fn)(*args)


@pytest.mark.parametrize("fn", ["softmax_backward", "log_softmax_backward"])
@pytest.mark.parametrize("case", list(hostile_arrays()))
def test_softmax_backwards_refuse_a_hostile_upstream_by_name(fn, case):
    forward = getattr(losses, fn.replace("backward", "forward"))
    _, cache = forward(np.ones((2, 3)))
    value, error = hostile_arrays()[case]
    with pytest.raises(error, match=f"^{fn}: argument '(ds|dout)'"):
        getattr(losses, fn)(value, cache)


@pytest.mark.parametrize("fn", list(ELEMENTWISE) + ["softmax_cross_entropy", "softmax_cross_entropy_forward"])
def test_an_empty_batch_is_refused(fn):
    # the mean over N = 0 examples is 0 / 0: a NaN with only a RuntimeWarning before
    if "softmax" in fn:
        args, name = (np.zeros((0, 3)), np.zeros(0, dtype=np.int64)), "z"
    else:
        f, name, _, _ = ELEMENTWISE[fn]
        args = (np.zeros((0, 3)), np.zeros((0, 3)))
    with pytest.raises(ValueError, match=rf"^{fn}: argument '{name}' must hold at least one example \(N >= 1\), got shape \(0, 3\)$"):
        getattr(losses, fn)(*args)


def test_zero_classes_are_refused_by_every_softmax_function():
    for fn in ("softmax", "softmax_forward", "log_softmax", "log_softmax_forward"):
        with pytest.raises(ValueError, match=rf"^{fn}: argument 'z' must have a class axis .* K >= 1 classes, got shape \(2, 0\)$"):
            getattr(losses, fn)(np.zeros((2, 0)))
    # an empty batch of K classes is a valid softmax input (it is not a mean)
    assert losses.softmax(np.zeros((0, 4))).shape == (0, 4)


def test_the_half_squared_error_of_matrices_is_elementwise():
    # np.matrix makes * a matrix product: ones vs zeros, 3 x 3, gave 4.5 instead of 9 / 2 / 3 = 1.5.
    y, t = as_matrix(np.ones((3, 3))), as_matrix(np.zeros((3, 3)))
    assert losses.half_squared_error(y, t) == 1.5
    L, cache = losses.half_squared_error_forward(y, t)
    assert type(losses.half_squared_error_backward(1.0, cache)) is np.ndarray


def test_half_squared_error_is_finite_whenever_the_true_loss_is():
    # 0.5 (1.5e154)^2 = 1.125e308 fits, although (1.5e154)^2 alone does not
    L, cache = losses.half_squared_error_forward(np.array([[1.5e154]]), np.array([[0.0]]))
    assert L == pytest.approx(1.125e308, rel=1e-15)
    # two entries of 1e154 and N = 2: (1e308 + 1e308) / 2 / 2 = 5e307
    assert losses.half_squared_error(np.full((2, 1), 1e154), np.zeros((2, 1))) == pytest.approx(5e307, rel=1e-15)
    with pytest.raises(ValueError, match="^half_squared_error: the loss overflows float64"):
        losses.half_squared_error(np.array([[1e155]]), np.array([[0.0]]))
    with pytest.raises(ValueError, match="^half_squared_error_forward: y - t overflows float64"):
        losses.half_squared_error_forward(np.array([[MAX]]), np.array([[-MAX]]))


def test_logits_loss_is_finite_whenever_the_true_loss_is():
    # each of the 4 terms is max(z, 0) - t z + log1p(e^-|z|) = 1e308 for z = -1e308, t = 1;
    # their sum overflows, their mean over N = 4 is 1e308
    z, t = np.full((4, 1), -1e308), np.ones((4, 1))
    assert BCE_LOGITS(z, t) == pytest.approx(1e308, rel=1e-15)
    with pytest.raises(ValueError, match="^binary_cross_entropy_with_logits: the loss overflows float64"):
        BCE_LOGITS(np.full((1, 2), -MAX), np.ones((1, 2)))  # the true mean is 2 MAX


@pytest.mark.parametrize("forward, backward", [(losses.softmax_forward, losses.softmax_backward),
                                               (losses.log_softmax_forward, losses.log_softmax_backward)])
def test_softmax_backwards_are_finite_for_upstream_gradients_near_the_limit(forward, backward):
    # The maps are linear in the upstream gradient g: backward(g) = c backward(g / c), exactly for c a power of 2.
    z = np.array([[0.5, -1.0, 2.0, 0.0], [3.0, 3.0, -2.0, 1.0]])
    _, cache = forward(z)
    g = np.array([[1.0, 0.9, 1.0, -0.3], [1.0, 1.0, 1.0, 1.0]]) * 2.0 ** 1022  # sums over k overflow
    expected = backward(g / 2.0 ** 1022, cache) * 2.0 ** 1022
    got = backward(g, cache)
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got, expected, rtol=1e-14)


def test_log_softmax_backward_refuses_a_true_overflow():
    # dz_0 = dout_0 - s_0 (dout_0 + dout_1 + dout_2) = MAX + MAX / 3 for s = (1/3, 1/3, 1/3): beyond the float range.
    # (The softmax map cannot overflow: |dz_k| = s_k |sum_j s_j (ds_k - ds_j)| <= MAX / 2.)
    _, cache = losses.log_softmax_forward(np.zeros((1, 3)))
    with pytest.raises(ValueError, match="^log_softmax_backward: the gradient overflows float64"):
        losses.log_softmax_backward(np.array([[MAX, -MAX, -MAX]]), cache)


def test_log_softmax_refuses_a_gap_beyond_the_float_range():
    z = np.array([[MAX, -MAX, 0.0]])
    with pytest.raises(ValueError, match=r"^log_softmax: log softmax \(the gap between two logits of a row\) overflows"):
        losses.log_softmax(z)
    s = losses.softmax(z)  # e^(-2 MAX) is exactly 0: softmax itself is fine
    np.testing.assert_array_equal(s, [[1.0, 0.0, 0.0]])
    with pytest.raises(ValueError, match="^softmax_cross_entropy: the loss overflows"):
        SCE(z, np.array([1]))
    assert SCE(z, np.array([0])) == 0.0


def test_dloss_too_large_for_the_gradient_dtype_is_refused():
    for forward, backward, args in [
        (losses.softmax_cross_entropy_forward, losses.softmax_cross_entropy_backward, (np.zeros((2, 3), np.float32), np.array([0, 1]))),
        (losses.binary_cross_entropy_with_logits_forward, losses.binary_cross_entropy_with_logits_backward,
         (np.zeros((2, 3), np.float32), np.zeros((2, 3), np.float32))),
    ]:
        _, cache = forward(*args)
        with pytest.raises(ValueError, match=f"^{backward.__name__}: argument 'dloss' = 1e\\+39 overflows the float32 gradient"):
            backward(1e39, cache)
        assert np.all(np.isfinite(backward(1e38, cache)))


def test_a_gradient_that_overflows_is_refused():
    _, cache = losses.binary_cross_entropy_forward(np.array([[1.0]]), np.array([[0.0]]))  # dp = dloss / 1e-12
    with pytest.raises(ValueError, match="^binary_cross_entropy_backward: the gradient overflows float64"):
        losses.binary_cross_entropy_backward(1e300, cache)
    _, cache = losses.half_squared_error_forward(np.array([[1e10]]), np.array([[0.0]]))
    with pytest.raises(ValueError, match="^half_squared_error_backward: the gradient overflows float64"):
        losses.half_squared_error_backward(1e300, cache)


def test_bad_dloss_types_are_refused_clearly():
    _, cache = losses.softmax_cross_entropy_forward(np.zeros((2, 3)), np.array([0, 1]))
    import fractions
    assert losses.softmax_cross_entropy_backward(fractions.Fraction(1, 2), cache).shape == (2, 3)
    with pytest.raises(ValueError, match="^softmax_cross_entropy_backward: argument 'dloss' is too large for a float"):
        losses.softmax_cross_entropy_backward(2**2000, cache)
    with pytest.raises(TypeError, match="^softmax_cross_entropy_backward: argument 'dloss' must be a finite real number, got bool"):
        losses.softmax_cross_entropy_backward(True, cache)


def test_label_and_range_errors_say_what_came():
    with pytest.raises(ValueError, match=r"labels outside \[0, K\) = \[0, 3\): its smallest is -1 and its largest 3"):
        SCE(np.zeros((2, 3)), np.array([-1, 3]))
    with pytest.raises(ValueError, match=r"^binary_cross_entropy: argument 'p' must hold values in \[0, 1\], got values in \[-0.5, 1\]"):
        BCE(np.array([[-0.5, 1.0]]), np.array([[0.0, 1.0]]))


def test_onehot_with_an_impossible_K_is_refused_by_name():
    with pytest.raises(ValueError, match="^onehot: argument 'K'"):
        losses.onehot(np.array([0, 1]), 2**62)
    with pytest.raises(ValueError, match="^onehot: argument 'K' must lie within"):
        losses.onehot(np.array([0, 1]), 2**2000)


def test_softmax_cross_entropy_keeps_the_exact_loss_and_gradient():
    # Computed from the definitions with Python floats: row (1, 2, 3), label 2; row (0, 0, 0), label 0.
    import math
    z, y = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]]), np.array([2, 0])
    lse = math.log(math.exp(1) + math.exp(2) + math.exp(3))
    expected = ((lse - 3.0) + math.log(3.0)) / 2
    L, cache = losses.softmax_cross_entropy_forward(z, y)
    assert L == pytest.approx(expected, rel=1e-15)
    s0 = [math.exp(v - lse) for v in (1.0, 2.0, 3.0)]
    dz = losses.softmax_cross_entropy_backward(2.0, cache)
    np.testing.assert_allclose(dz, 2.0 * (np.array([s0, [1 / 3] * 3]) - np.array([[0, 0, 1], [1, 0, 0]])) / 2, rtol=1e-14)


def test_cross_entropy_refuses_nan_and_inf_through_the_loss_and_keeps_minus_inf_elsewhere_exact():
    z, y = np.array([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]]), np.array([1, 2])
    for k, bad in [((0, 0), np.nan), ((1, 1), np.inf), ((0, 1), -np.inf)]:  # the last one is a label
        zb = z.copy()
        zb[k] = bad
        message = rf"^softmax_cross_entropy_forward: argument 'z' contains NaN or infinity \(first at index \({k[0]}, {k[1]}\)"
        with pytest.raises(ValueError, match=message):
            losses.softmax_cross_entropy_forward(zb, y)
    # -inf at a class that is not the label is that class with probability exactly 0
    zb = z.copy()
    zb[0, 2] = -np.inf
    L, cache = losses.softmax_cross_entropy_forward(zb, y)
    L_ref = losses.softmax_cross_entropy(np.array([[1.0, 2.0, -1e4], [0.0, -1.0, 3.0]]), y)  # e^-1e4 is exactly 0 as well
    assert L == L_ref and cache.s[0, 2] == 0.0 and np.all(np.isfinite(losses.softmax_cross_entropy_backward(1.0, cache)))
