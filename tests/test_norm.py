"""Tests of bplib.norm: batch norm (training and inference), its two backward passes, layer norm, spatial batch norm."""

import copy
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import norm_problems, seeds

from bplib import norm
from bplib.gradcheck import check_backward

GRADCHECK = settings(max_examples=20)
NAMES = ("x", "gamma", "beta")
EPS = 1e-5


def _pair(forward):
    """forward's (out, cache), dropping the new running statistics, so that check_backward can use it."""
    def pair(*args, **kwargs):
        out, _, _, cache = forward(*args, **kwargs)
        return out, cache
    return pair


BN = _pair(norm.batchnorm_forward)
SPATIAL = _pair(norm.spatial_batchnorm_forward)


def _layernorm_problem(seed, N=3, D=4):
    rng = np.random.default_rng(seed)
    return rng.uniform(0.5, 2.0, (N, 1)) * rng.standard_normal((N, D)) + rng.standard_normal((N, 1)), rng.standard_normal(D), \
        rng.standard_normal(D)


def _assert_same_tree(a, b):
    if isinstance(a, tuple):
        assert isinstance(b, tuple) and len(a) == len(b)
        for u, v in zip(a, b):
            _assert_same_tree(u, v)
    elif isinstance(a, np.ndarray):
        np.testing.assert_array_equal(a, b)
    else:
        assert a == b


def _fixed(N=4, D=3, seed=0):
    rng = np.random.default_rng(seed)
    return (2.0 * rng.standard_normal((N, D)) + 1.0, rng.standard_normal(D), rng.standard_normal(D),
            rng.standard_normal(D), rng.uniform(0.5, 2.0, D))


# ---------------------------------------------------------------- gradient checks


@GRADCHECK
@given(norm_problems(), st.booleans())
def test_batchnorm_gradcheck_training(problem, steps):
    backward = norm.batchnorm_backward_steps if steps else norm.batchnorm_backward
    check_backward(BN, backward, problem, wrt=(0, 1, 2), names=NAMES, kwargs=dict(training=True))


@GRADCHECK
@given(norm_problems(min_batch=1), st.booleans())
def test_batchnorm_gradcheck_inference(problem, steps):
    backward = norm.batchnorm_backward_steps if steps else norm.batchnorm_backward
    check_backward(BN, backward, problem, wrt=(0, 1, 2), names=NAMES, kwargs=dict(training=False))


@GRADCHECK
@given(st.integers(1, 5), st.integers(1, 6), seeds())
def test_layernorm_gradcheck(N, D, seed):
    check_backward(norm.layernorm_forward, norm.layernorm_backward, _layernorm_problem(seed, N, D), names=NAMES)


@GRADCHECK
@given(norm_problems(spatial=True), st.booleans())
def test_spatial_gradcheck_training(problem, training):
    check_backward(SPATIAL, norm.spatial_batchnorm_backward, problem, wrt=(0, 1, 2), names=NAMES,
                   kwargs=dict(training=training))


@GRADCHECK
@given(norm_problems(spatial=True, min_batch=1))
def test_spatial_gradcheck_inference(problem):
    check_backward(SPATIAL, norm.spatial_batchnorm_backward, problem, wrt=(0, 1, 2), names=NAMES,
                   kwargs=dict(training=False))


# ---------------------------------------------------------------- the two backward passes agree


@settings(max_examples=40)
@given(norm_problems(min_batch=1), st.booleans(), seeds())
def test_steps_equal_compact(problem, training, seed):
    if problem[0].shape[0] < 2:
        training = False
    _, _, _, cache = norm.batchnorm_forward(*problem, training=training)
    dout = np.random.default_rng(seed).standard_normal(problem[0].shape)
    for a, b in zip(norm.batchnorm_backward_steps(dout, cache), norm.batchnorm_backward(dout, cache)):
        scale = np.abs(b).max() + 1.0
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10 * scale)


# ---------------------------------------------------------------- forward values


@given(norm_problems())
def test_training_output_statistics(problem):
    x, gamma, beta, rm, rv = problem
    ones, zeros = np.ones_like(gamma), np.zeros_like(beta)
    xhat = norm.batchnorm_forward(x, ones, zeros, rm, rv)[0]
    v = np.var(x, axis=0)
    np.testing.assert_allclose(xhat.mean(axis=0), 0.0, atol=1e-12)
    # The biased variance of xhat is v / (v + eps), within 1e-5 / v of 1.
    np.testing.assert_allclose(xhat.var(axis=0), v / (v + EPS), rtol=1e-10)
    out = norm.batchnorm_forward(x, gamma, beta, rm, rv)[0]
    np.testing.assert_allclose(out, gamma * xhat + beta, rtol=1e-12, atol=1e-12)


def test_training_output_by_hand():
    # One feature, x = (1, 3): mean 2, biased variance 1, so xhat = (-1, 1) / sqrt(1 + eps).
    out, _, _, _ = norm.batchnorm_forward(np.array([[1.0], [3.0]]), [2.0], [0.5], [0.0], [1.0])
    s = 1.0 / math.sqrt(1.0 + EPS)
    np.testing.assert_allclose(out.ravel(), [0.5 - 2.0 * s, 0.5 + 2.0 * s], rtol=1e-14)


@given(norm_problems(min_batch=1))
def test_inference_uses_running_statistics(problem):
    x, gamma, beta, rm, rv = problem
    out, new_mean, new_var, _ = norm.batchnorm_forward(x, gamma, beta, rm, rv, training=False, momentum=0.5)
    np.testing.assert_allclose(out, gamma * (x - rm) / np.sqrt(rv + EPS) + beta, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(new_mean, rm)
    np.testing.assert_array_equal(new_var, rv)
    assert not np.shares_memory(new_mean, rm) and not np.shares_memory(new_var, rv)


@given(norm_problems(min_batch=1))
def test_inference_batch_is_stacked_examples(problem):
    x, gamma, beta, rm, rv = problem
    whole = norm.batchnorm_forward(x, gamma, beta, rm, rv, training=False)[0]
    rows = [norm.batchnorm_forward(x[n:n + 1], gamma, beta, rm, rv, training=False)[0] for n in range(x.shape[0])]
    np.testing.assert_array_equal(whole, np.concatenate(rows))


def test_running_statistics_by_hand():
    # Features (1, 3, 5) and (2, 6, 10): batch means 3 and 6, unbiased variances
    # (4 + 0 + 4) / 2 = 4 and (16 + 0 + 16) / 2 = 16. With momentum 1/4:
    # mean 3/4 (0.5) + 1/4 (3) = 1.125 and 3/4 (-1) + 1/4 (6) = 0.75;
    # var 3/4 (2) + 1/4 (4) = 2.5 and 3/4 (1) + 1/4 (16) = 4.75.
    x = np.array([[1.0, 2.0], [3.0, 6.0], [5.0, 10.0]])
    _, m, v, _ = norm.batchnorm_forward(x, np.ones(2), np.zeros(2), [0.5, -1.0], [2.0, 1.0], momentum=0.25)
    np.testing.assert_allclose(m, [1.125, 0.75], rtol=1e-15)
    np.testing.assert_allclose(v, [2.5, 4.75], rtol=1e-15)


@pytest.mark.parametrize("momentum", [0.0, 1.0])
def test_momentum_extremes(momentum):
    x, gamma, beta, rm, rv = _fixed()
    _, m, v, _ = norm.batchnorm_forward(x, gamma, beta, rm, rv, momentum=momentum)
    want_m, want_v = (rm, rv) if momentum == 0 else (x.mean(axis=0), np.var(x, axis=0, ddof=1))
    np.testing.assert_allclose(m, want_m, rtol=1e-14)
    np.testing.assert_allclose(v, want_v, rtol=1e-14)


def test_layernorm_by_hand():
    # Row (1, 3): mean 2, biased variance 1; row (0, 0, ...) is constant, so xhat = 0 and out = beta.
    out, _ = norm.layernorm_forward(np.array([[1.0, 3.0], [0.0, 0.0]]), [2.0, -1.0], [0.5, 0.25])
    s = 1.0 / math.sqrt(1.0 + EPS)
    np.testing.assert_allclose(out, [[0.5 - 2.0 * s, 0.25 - s], [0.5, 0.25]], rtol=1e-14)


@given(st.integers(1, 5), st.integers(2, 6), seeds())
def test_layernorm_row_statistics_and_stacking(N, D, seed):
    x, _, _ = _layernorm_problem(seed, N, D)
    xhat, _ = norm.layernorm_forward(x, np.ones(D), np.zeros(D))
    v = np.var(x, axis=1)
    np.testing.assert_allclose(xhat.mean(axis=1), 0.0, atol=1e-12)
    np.testing.assert_allclose(xhat.var(axis=1), v / (v + EPS), rtol=1e-10)
    rows = [norm.layernorm_forward(x[n:n + 1], np.ones(D), np.zeros(D))[0] for n in range(N)]
    # Equal up to rounding: the row sums are matrix-vector products, which BLAS may block differently.
    np.testing.assert_allclose(xhat, np.concatenate(rows), rtol=1e-14, atol=1e-15)


@given(norm_problems(spatial=True))
def test_spatial_statistics_per_channel(problem):
    x, gamma, beta, rm, rv = problem
    out, m, v, _ = norm.spatial_batchnorm_forward(x, gamma, beta, rm, rv, momentum=0.3)
    mu, var = x.mean(axis=(0, 2, 3)), np.var(x, axis=(0, 2, 3))
    c = (slice(None), None, None)
    np.testing.assert_allclose(out, gamma[c] * (x - mu[c]) / np.sqrt(var[c] + EPS) + beta[c], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(m, 0.7 * rm + 0.3 * mu, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(v, 0.7 * rv + 0.3 * np.var(x, axis=(0, 2, 3), ddof=1), rtol=1e-12)


# ---------------------------------------------------------------- gradient properties


@given(norm_problems(), seeds())
def test_dx_sums_to_zero_over_the_batch(problem, seed):
    _, _, _, cache = norm.batchnorm_forward(*problem)
    dout = np.random.default_rng(seed).standard_normal(problem[0].shape)
    for backward in (norm.batchnorm_backward, norm.batchnorm_backward_steps):
        dx = backward(dout, cache)[0]
        np.testing.assert_allclose(dx.sum(axis=0), 0.0, atol=1e-10 * (np.abs(dx).max() + 1.0))


@given(st.integers(1, 5), st.integers(1, 6), seeds())
def test_layernorm_dx_sums_to_zero_over_features(N, D, seed):
    x, gamma, beta = _layernorm_problem(seed, N, D)
    _, cache = norm.layernorm_forward(x, gamma, beta)
    dx = norm.layernorm_backward(np.random.default_rng(seed + 1).standard_normal((N, D)), cache)[0]
    np.testing.assert_allclose(dx.sum(axis=1), 0.0, atol=1e-10 * (np.abs(dx).max() + 1.0))


def test_backward_is_linear_in_dout():
    _, _, _, cache = norm.batchnorm_forward(*_fixed())
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    for backward in (norm.batchnorm_backward, norm.batchnorm_backward_steps):
        both = backward(2.0 * a - b, cache)
        for g, ga, gb in zip(both, backward(a, cache), backward(b, cache)):
            np.testing.assert_allclose(g, 2.0 * ga - gb, rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------- no mutation, dtypes, extremes


def _calls():
    x, gamma, beta, rm, rv = _fixed()
    xs = np.random.default_rng(2).standard_normal((2, 3, 2, 2))
    return [
        (norm.batchnorm_forward, (x, gamma, beta, rm, rv), dict(training=True), norm.batchnorm_backward),
        (norm.batchnorm_forward, (x, gamma, beta, rm, rv), dict(training=True), norm.batchnorm_backward_steps),
        (norm.batchnorm_forward, (x, gamma, beta, rm, rv), dict(training=False), norm.batchnorm_backward_steps),
        (norm.layernorm_forward, (x, gamma, beta), {}, norm.layernorm_backward),
        (norm.spatial_batchnorm_forward, (xs, gamma, beta, rm, rv), {}, norm.spatial_batchnorm_backward),
    ]


@pytest.mark.parametrize("k", range(5))
def test_no_mutation(k):
    forward, args, kwargs, backward = _calls()[k]
    saved = copy.deepcopy(args)
    result = forward(*args, **kwargs)
    cache = result[-1]
    saved_cache = copy.deepcopy(cache)
    dout = np.random.default_rng(3).standard_normal(result[0].shape)
    saved_dout = dout.copy()
    grads = backward(dout, cache)
    _assert_same_tree(args, saved)
    _assert_same_tree(cache, saved_cache)
    np.testing.assert_array_equal(dout, saved_dout)
    for g in grads:  # the gradients are new arrays, not views of the inputs or the cache
        assert not any(np.shares_memory(g, a) for a in args) and not np.shares_memory(g, dout)


def test_new_running_statistics_are_new_arrays():
    x, gamma, beta, rm, rv = _fixed()
    _, m, v, _ = norm.batchnorm_forward(x, gamma, beta, rm, rv, momentum=0.0)
    assert not np.shares_memory(m, rm) and not np.shares_memory(v, rv)


def test_float32_in_float32_out():
    x, gamma, beta, rm, rv = (a.astype(np.float32) for a in _fixed())
    out, m, v, cache = norm.batchnorm_forward(x, gamma, beta, rm, rv)
    grads = norm.batchnorm_backward(np.ones_like(out), cache)
    assert out.dtype == m.dtype == v.dtype == np.float32
    assert all(g.dtype == np.float32 for g in grads)
    np.testing.assert_allclose(out, norm.batchnorm_forward(*_fixed())[0], rtol=1e-4, atol=1e-5)


def test_constant_feature_is_finite():
    x, gamma, beta, rm, rv = _fixed()
    x[:, 1] = 0.1  # a constant whose mean is not exactly 0.1 in floating point
    out, m, v, cache = norm.batchnorm_forward(x, gamma, beta, rm, rv)
    np.testing.assert_allclose(out[:, 1], beta[1], atol=1e-9)  # xhat = 0: out = beta
    np.testing.assert_allclose(v[1], 0.9 * rv[1], atol=1e-15)  # the batch adds no variance
    dout = np.random.default_rng(4).standard_normal(x.shape)
    for backward in (norm.batchnorm_backward, norm.batchnorm_backward_steps):
        grads = backward(dout, cache)
        assert all(np.all(np.isfinite(g)) for g in grads)
    check_backward(BN, norm.batchnorm_backward, (x, gamma, beta, rm, rv), wrt=(0, 1, 2), names=NAMES)


def test_layernorm_constant_row_is_finite():
    x, gamma, beta = _layernorm_problem(0)
    x[0] = 7.3
    out, cache = norm.layernorm_forward(x, gamma, beta)
    np.testing.assert_allclose(out[0], beta, atol=1e-9)
    assert all(np.all(np.isfinite(g)) for g in norm.layernorm_backward(np.ones_like(x), cache))
    check_backward(norm.layernorm_forward, norm.layernorm_backward, (x, gamma, beta), names=NAMES)


@pytest.mark.parametrize("scale", [1e-100, 1e100])
def test_extreme_scales_stay_finite(scale):
    x, gamma, beta, rm, rv = _fixed()
    out, m, v, cache = norm.batchnorm_forward(scale * x, gamma, beta, rm, rv)
    grads = norm.batchnorm_backward(np.ones_like(out), cache) + norm.batchnorm_backward_steps(np.ones_like(out), cache)
    assert all(np.all(np.isfinite(a)) for a in (out, m, v) + grads)
    if scale > 1:  # eps is negligible: xhat is the standardized x
        want = (x - x.mean(axis=0)) / x.std(axis=0)
        np.testing.assert_allclose(out, gamma * want + beta, rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------- bad input


def _bn_kwargs(**override):
    x, gamma, beta, rm, rv = _fixed()
    kw = dict(x=x, gamma=gamma, beta=beta, running_mean=rm, running_var=rv)
    kw.update(override)
    return kw


BN_FORWARDS = [norm.batchnorm_forward, norm.spatial_batchnorm_forward]


def _for(forward, **override):
    """Keyword arguments for forward, with x four-dimensional for the spatial version."""
    kw = _bn_kwargs()
    if forward is norm.spatial_batchnorm_forward:
        kw["x"] = np.random.default_rng(5).standard_normal((2, 3, 2, 2))
    kw.update(override)
    return kw


@pytest.mark.parametrize("forward", BN_FORWARDS)
@pytest.mark.parametrize(("option", "value", "error"), [
    ("training", 1, TypeError), ("training", "yes", TypeError),
    ("momentum", -0.1, ValueError), ("momentum", 1.5, ValueError), ("momentum", None, TypeError),
    ("eps", 0.0, ValueError), ("eps", -1e-5, ValueError), ("eps", float("nan"), TypeError),
])
def test_bad_options(forward, option, value, error):
    with pytest.raises(error, match=f"{forward.__name__}: argument '{option}'"):
        forward(**_for(forward, **{option: value}))


@pytest.mark.parametrize("forward", BN_FORWARDS)
@pytest.mark.parametrize("name", ["gamma", "beta", "running_mean", "running_var"])
@pytest.mark.parametrize("bad", [np.ones(4), np.ones((3, 1)), np.ones(2)])
def test_bad_feature_arrays(forward, name, bad):
    with pytest.raises(ValueError, match=f"{forward.__name__}: argument '{name}' must have"):
        forward(**_for(forward, **{name: bad}))


@pytest.mark.parametrize("forward", BN_FORWARDS)
def test_negative_running_var(forward):
    with pytest.raises(ValueError, match="argument 'running_var' must be non-negative"):
        forward(**_for(forward, running_var=np.array([1.0, -0.5, 1.0])))


@pytest.mark.parametrize(("forward", "x"), [
    (norm.batchnorm_forward, np.ones(3)), (norm.batchnorm_forward, np.ones((2, 3, 1))),
    (norm.spatial_batchnorm_forward, np.ones((2, 3))), (norm.layernorm_forward, np.ones((2, 3, 1))),
])
def test_x_wrong_ndim(forward, x):
    kw = dict(x=x, gamma=np.ones(3), beta=np.zeros(3))
    if forward is not norm.layernorm_forward:
        kw.update(running_mean=np.zeros(3), running_var=np.ones(3))
    with pytest.raises(ValueError, match=f"{forward.__name__}: argument 'x' must have"):
        forward(**kw)


@pytest.mark.parametrize(("forward", "x"), [
    (norm.batchnorm_forward, np.ones((1, 3))), (norm.batchnorm_forward, np.ones((0, 3))),
    (norm.spatial_batchnorm_forward, np.ones((1, 3, 1, 1))),
])
def test_batch_of_one_in_training_mode(forward, x):
    with pytest.raises(ValueError, match=f"{forward.__name__}: argument 'x' must hold at least 2"):
        forward(**_for(forward, x=x))
    # Inference mode takes a single example (the running statistics need no batch).
    if x.size:
        assert forward(**_for(forward, x=x), training=False)[0].shape == x.shape


@pytest.mark.parametrize(("forward", "x"), [
    (norm.batchnorm_forward, np.ones((0, 3))), (norm.batchnorm_forward, np.ones((2, 0))),
    (norm.spatial_batchnorm_forward, np.ones((1, 3, 0, 2))),
])
def test_empty_x(forward, x):
    override = dict(x=x, training=False)
    if x.shape[1] == 0:
        override.update(gamma=np.ones(0), beta=np.ones(0), running_mean=np.ones(0), running_var=np.ones(0))
    with pytest.raises(ValueError, match=f"{forward.__name__}: argument 'x' must have at least one example"):
        forward(**_for(forward, **override))


def test_nan_in_x():
    with pytest.raises(ValueError, match="batchnorm_forward: argument 'x' contains NaN"):
        norm.batchnorm_forward(**_bn_kwargs(x=np.full((2, 3), np.nan)))


def test_layernorm_bad_inputs():
    x, gamma, beta = _layernorm_problem(0)
    with pytest.raises(ValueError, match="layernorm_forward: argument 'eps'"):
        norm.layernorm_forward(x, gamma, beta, eps=0.0)
    with pytest.raises(ValueError, match="layernorm_forward: argument 'x' must have at least one feature"):
        norm.layernorm_forward(np.ones((2, 0)), np.ones(0), np.ones(0))
    for name in ("gamma", "beta"):
        kw = dict(x=x, gamma=gamma, beta=beta)
        kw[name] = np.ones(5)
        with pytest.raises(ValueError, match=f"layernorm_forward: argument '{name}' must have shape \\(4,\\)"):
            norm.layernorm_forward(**kw)


BACKWARDS = [(0, norm.batchnorm_backward), (1, norm.batchnorm_backward_steps), (3, norm.layernorm_backward),
             (4, norm.spatial_batchnorm_backward)]


@pytest.mark.parametrize(("k", "backward"), BACKWARDS)
def test_backward_bad_dout(k, backward):
    forward, args, kwargs, _ = _calls()[k]
    result = forward(*args, **kwargs)
    out, cache = result[0], result[-1]
    with pytest.raises(ValueError, match=f"{backward.__name__}: argument 'dout' must have shape"):
        backward(np.ones(out.shape[:-1] + (out.shape[-1] + 1,)), cache)
    with pytest.raises(ValueError, match=f"{backward.__name__}: argument 'dout' must have {out.ndim} dimensions"):
        backward(np.ones(out.shape + (1,)), cache)
    with pytest.raises(TypeError, match=f"{backward.__name__}: argument 'cache'"):
        backward(np.ones(out.shape), cache[:-1])


def test_spatial_bad_inner_cache():
    xs = np.random.default_rng(6).standard_normal((2, 3, 2, 2))
    _, _, _, (_, shape) = norm.spatial_batchnorm_forward(xs, *_fixed()[1:])
    with pytest.raises(TypeError, match="spatial_batchnorm_backward: argument 'cache'"):
        norm.spatial_batchnorm_backward(np.ones(xs.shape), ((), shape))


# ---------------------------------------------------------------- ranges: scaled before squaring, or refused clearly


@pytest.mark.parametrize("scale, dtype", [(2e19, np.float32), (3e37, np.float32), (1e200, np.float64), (1e307, np.float64)])
def test_layernorm_is_right_where_the_squares_overflow(scale, dtype):
    # Layer norm does not depend on the scale of a row once eps is negligible: the row s r has the xhat of r.
    rng = np.random.default_rng(16)
    r = rng.uniform(-1.0, 1.0, (3, 6))
    r[2] = 0.5  # a constant row: xhat = 0, out = beta
    gamma, beta = rng.standard_normal(6), rng.standard_normal(6)
    out, cache = norm.layernorm_forward((scale * r).astype(dtype), gamma.astype(dtype), beta.astype(dtype), eps=1e-30)
    want = norm.layernorm_forward(r, gamma, beta, eps=1e-30)[0]
    assert out.dtype == dtype
    np.testing.assert_allclose(out, want, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-5 if dtype == np.float32 else 1e-12)
    grads = norm.layernorm_backward(np.ones_like(out), cache)
    assert all(np.all(np.isfinite(g)) for g in grads)


@pytest.mark.parametrize("forward, shape", [(norm.batchnorm_forward, (4, 3)), (norm.spatial_batchnorm_forward, (2, 3, 2, 1))])
def test_batchnorm_refuses_a_variance_beyond_the_dtype(forward, shape):
    # Values of +-2e19 in float32 have a variance of 4e38, above float32's largest 3.4e38: the running variance could
    # not hold it, so training mode refuses by name. Inference mode uses the running statistics and works.
    x = (2e19 * np.where(np.arange(np.prod(shape)).reshape(shape) % 2 == 0, 1.0, -1.0)).astype(np.float32)
    stats = [np.ones(3, dtype=np.float32), np.zeros(3, dtype=np.float32), np.zeros(3, dtype=np.float32),
             np.full(3, 1e38, dtype=np.float32)]
    with pytest.raises(ValueError, match=f"{forward.__name__}: argument 'x' has a batch variance beyond the range of float32"):
        forward(x, *stats)
    out = forward(x, *stats, training=False)[0]
    assert out.dtype == np.float32 and np.all(np.isfinite(out))
    np.testing.assert_allclose(np.abs(out), 2e19 / np.sqrt(1e38), rtol=1e-5)


def test_batchnorm_float32_large_but_representable():
    rng = np.random.default_rng(17)
    x = 1e18 * rng.standard_normal((8, 3))  # variance 1e36: fits in float32
    want = norm.batchnorm_forward(x, np.ones(3), np.zeros(3), np.zeros(3), np.ones(3))
    got = norm.batchnorm_forward(*(a.astype(np.float32) for a in (x, np.ones(3), np.zeros(3), np.zeros(3), np.ones(3))))
    for g, w in zip(got[:3], want[:3]):
        assert g.dtype == np.float32 and np.all(np.isfinite(g))
        np.testing.assert_allclose(g, w, rtol=1e-4)


@pytest.mark.parametrize("k", range(5))
def test_results_beyond_the_float_range_are_refused(k):
    # A gamma of 1e308 makes the output overflow; an upstream gradient of 1e308 makes the sums over the batch
    # overflow: both are refused by name instead of returning inf.
    forward, args, kwargs, backward = _calls()[k]
    big = list(args)
    big[1], big[2] = np.full(args[1].shape, 1.7e308), np.full(args[2].shape, 1.7e308)  # gamma and beta

    with pytest.raises(ValueError, match=f"^{forward.__name__}: the output overflows float64"):
        forward(*big, **kwargs)
    result = forward(*args, **kwargs)
    with pytest.raises(ValueError, match=f"^{backward.__name__}: argument 'dout' is too large"):
        backward(np.full(result[0].shape, 1e308), result[-1])


@pytest.mark.parametrize("k", range(5))
def test_nan_and_inf_in_dout_are_refused(k):
    forward, args, kwargs, backward = _calls()[k]
    result = forward(*args, **kwargs)
    for bad in (np.nan, np.inf):
        dout = np.ones(result[0].shape)
        dout.flat[1] = bad
        with pytest.raises(ValueError, match=f"^{backward.__name__}: argument 'dout' contains NaN or infinity"):
            backward(dout, result[-1])


@pytest.mark.parametrize("training", [True, False])
def test_nan_and_inf_in_x_are_refused_in_both_modes(training):
    for forward, x in ((norm.batchnorm_forward, np.ones((4, 3))), (norm.spatial_batchnorm_forward, np.ones((2, 3, 2, 2)))):
        for bad in (np.nan, -np.inf):
            x = x.copy()
            x.flat[2] = bad
            with pytest.raises(ValueError, match=f"^{forward.__name__}: argument 'x' contains NaN or infinity"):
                forward(x, np.ones(3), np.zeros(3), np.zeros(3), np.ones(3), training=training)
    x = np.ones((2, 3))
    x[1, 1] = np.nan
    with pytest.raises(ValueError, match="^layernorm_forward: argument 'x' contains NaN or infinity"):
        norm.layernorm_forward(x, np.ones(3), np.zeros(3))


def test_x_too_large_to_sum_is_refused_by_batch_norm():
    # Eight rows of 3e38 in float32: the batch sum overflows although every entry is finite.
    x = np.full((8, 2), 3e38, dtype=np.float32)
    with pytest.raises(ValueError, match="^batchnorm_forward: argument 'x' is too large: its sums overflow float32"):
        norm.batchnorm_forward(x, np.ones(2), np.zeros(2), np.zeros(2), np.ones(2))


def test_batchnorm_cache_gives_its_nodes_on_access():
    # The cache keeps x, mu and std; xc, inv and xhat are computed from them when asked for.
    x, gamma, beta, rm, rv = _fixed()
    _, _, _, c = norm.batchnorm_forward(x, gamma, beta, rm, rv)
    mu, var = x.mean(axis=0), x.var(axis=0)
    np.testing.assert_allclose(c.xc, x - mu, rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(c.inv, 1 / np.sqrt(var + EPS), rtol=1e-13)
    np.testing.assert_allclose(c.xhat, (x - mu) / np.sqrt(var + EPS), rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("forward, shape", [(norm.batchnorm_forward, (2, 2)), (norm.spatial_batchnorm_forward, (2, 2, 1, 1))])
def test_inference_checks_x_through_the_output(forward, shape):
    """In inference mode x is checked once, through the output's sums: NaN and infinity in x are refused by
    name, a huge finite x whose output fits is accepted, and an output beyond the float range is refused."""
    stats = (np.zeros(2), np.ones(2))
    for bad in (np.nan, np.inf, -np.inf):
        x = np.ones(shape)
        x.flat[0] = bad
        with pytest.raises(ValueError, match=f"{forward.__name__}: argument 'x' contains NaN or infinity"):
            forward(x, np.ones(2), np.zeros(2), *stats, training=False)
    x = np.full(shape, 1e308)  # the batch sums of x overflow, y = x / sqrt(1 + eps) does not
    out = forward(x, np.ones(2), np.zeros(2), *stats, training=False)[0]
    assert np.all(np.isfinite(out)) and np.allclose(out, 1e308 / np.sqrt(1 + 1e-5), rtol=1e-12, atol=0)
    with pytest.raises(ValueError, match=f"{forward.__name__}: the output overflows float64"):
        forward(x, np.full(2, 10.0), np.zeros(2), *stats, training=False)
