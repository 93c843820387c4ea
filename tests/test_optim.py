"""Tests of bplib.optim: each update against its closed form, computed here by hand."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import seeds

from bplib import optim


def _pair(seed, shapes=((3, 2), (2,))):
    rng = np.random.default_rng(seed)
    params = {f"p{i}": rng.standard_normal(s) for i, s in enumerate(shapes)}
    grads = {k: rng.standard_normal(v.shape) for k, v in params.items()}
    return params, grads


def _copy(d):
    return {k: v.copy() for k, v in d.items()}


def test_sgd_step_is_w_minus_lr_g_by_hand():
    w, g = np.array([1.0, -2.0]), np.array([0.5, 4.0])
    optim.SGD(lr=0.1).step({"w": w}, {"w": g})
    np.testing.assert_allclose(w, [1.0 - 0.05, -2.0 - 0.4], rtol=0, atol=1e-15)


def test_sgd_updates_in_place_and_leaves_grads_alone():
    params, grads = _pair(0)
    arrays, grads_before = dict(params), _copy(grads)
    optim.SGD(lr=0.5).step(params, grads)
    for k in params:
        assert params[k] is arrays[k]  # the same array objects, changed in place
        np.testing.assert_array_equal(grads[k], grads_before[k])


def test_momentum_three_steps_by_hand():
    # v1 = g1; v2 = mu g1 + g2; v3 = mu^2 g1 + mu g2 + g3; w_t = w_{t-1} - lr v_t
    w = np.array([1.0])
    g = [2.0, -1.0, 0.5]
    lr, mu = 0.1, 0.5
    opt = optim.SGD(lr=lr, momentum=mu)
    for gt in g:
        opt.step({"w": w}, {"w": np.array([gt])})
    v1, v2, v3 = 2.0, 0.5 * 2.0 - 1.0, 0.25 * 2.0 - 0.5 + 0.5
    np.testing.assert_allclose(w, [1.0 - lr * (v1 + v2 + v3)], rtol=1e-15)


@given(seeds(), st.floats(1e-3, 1.0))
def test_zero_momentum_equals_plain_sgd(seed, lr):
    p1, grads = _pair(seed)
    p2 = _copy(p1)
    a, b = optim.SGD(lr=lr), optim.SGD(lr=lr, momentum=0.0)
    for _ in range(3):
        a.step(p1, grads)
        b.step(p2, grads)
    for k in p1:
        np.testing.assert_array_equal(p1[k], p2[k])


@given(seeds(), st.floats(0.0, 1.0))
def test_weight_decay_adds_lambda_w_to_the_gradient(seed, lam):
    p1, grads = _pair(seed)
    p2 = _copy(p1)
    decayed = {k: grads[k] + lam * p1[k] for k in p1}  # d/dw (lam/2 ||w||^2) = lam w
    optim.SGD(lr=0.1, weight_decay=lam).step(p1, grads)
    optim.SGD(lr=0.1).step(p2, decayed)
    for k in p1:
        np.testing.assert_allclose(p1[k], p2[k], rtol=1e-14, atol=1e-15)


def test_weight_decay_alone_shrinks_by_one_minus_lr_lambda():
    w = np.array([2.0, -4.0])
    optim.SGD(lr=0.1, weight_decay=0.5).step({"w": w}, {"w": np.zeros(2)})
    np.testing.assert_allclose(w, [2.0 * 0.95, -4.0 * 0.95], rtol=1e-15)


@given(seeds(), st.floats(1e-4, 0.1))
def test_adam_first_step_has_magnitude_lr_per_coordinate(seed, lr):
    # After one step m_hat = g and v_hat = g^2 (bias correction), so the step is lr g / (|g| + eps).
    params, grads = _pair(seed)
    before = _copy(params)
    eps = 1e-12
    optim.Adam(lr=lr, eps=eps).step(params, grads)
    for k in params:
        step = before[k] - params[k]
        g = np.abs(grads[k])
        np.testing.assert_allclose(np.abs(step), lr * g / (g + eps), rtol=1e-9)
        np.testing.assert_allclose(np.abs(step)[g > 1e-3], lr, rtol=1e-8)  # = lr up to eps / |g|
        np.testing.assert_array_equal(np.sign(step), np.sign(grads[k]))


def test_adam_two_steps_by_hand():
    b1, b2, lr, eps = 0.9, 0.999, 0.01, 1e-8
    w = np.array([0.0])
    opt = optim.Adam(lr=lr, beta1=b1, beta2=b2, eps=eps)
    g1, g2 = 1.0, 3.0
    opt.step({"w": w}, {"w": np.array([g1])})
    opt.step({"w": w}, {"w": np.array([g2])})
    m2, v2 = (1 - b1) * (b1 * g1 + g2), (1 - b2) * (b2 * g1**2 + g2**2)
    step2 = lr * (m2 / (1 - b1**2)) / (np.sqrt(v2 / (1 - b2**2)) + eps)
    np.testing.assert_allclose(w, [-lr * g1 / (abs(g1) + eps) - step2], rtol=1e-12)


def test_float32_parameters_stay_float32():
    w = np.ones(3, dtype=np.float32)
    for opt in (optim.SGD(lr=0.1, momentum=0.9), optim.Adam()):
        opt.step({"w": w}, {"w": np.ones(3)})
        assert w.dtype == np.float32


def test_reset_forgets_the_velocity():
    w = np.zeros(1)
    opt = optim.SGD(lr=1.0, momentum=0.9)
    opt.step({"w": w}, {"w": np.ones(1)})
    opt.reset()
    opt.step({"w": w}, {"w": np.ones(1)})
    np.testing.assert_array_equal(w, [-2.0])  # two steps of v = g = 1, no carried velocity


@pytest.mark.parametrize("kwargs, match", [
    (dict(lr=0.0), "'lr' must lie in"),
    (dict(lr=-1.0), "'lr' must lie in"),
    (dict(lr=0.1, momentum=1.0), "'momentum' must lie in"),
    (dict(lr=0.1, momentum=-0.1), "'momentum' must lie in"),
    (dict(lr=0.1, weight_decay=-1e-3), "'weight_decay' must lie in"),
])
def test_sgd_validates_its_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        optim.SGD(**kwargs)


def test_sgd_refuses_a_non_number_lr():
    with pytest.raises(TypeError, match="'lr' must be a finite real number"):
        optim.SGD(lr="0.1")


@pytest.mark.parametrize("kwargs, match", [
    (dict(lr=0.0), "'lr' must lie in"),
    (dict(beta1=1.0), "'beta1' must lie in"),
    (dict(beta2=-0.5), "'beta2' must lie in"),
    (dict(eps=0.0), "'eps' must lie in"),
    (dict(weight_decay=-1.0), "'weight_decay' must lie in"),
])
def test_adam_validates_its_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        optim.Adam(**kwargs)


def test_step_refuses_mismatched_keys_naming_them():
    opt = optim.SGD(lr=0.1)
    with pytest.raises(ValueError, match=r"same keys; missing from grads: \['b'\], not in params: \['c'\]"):
        opt.step({"a": np.zeros(1), "b": np.zeros(1)}, {"a": np.zeros(1), "c": np.zeros(1)})


def test_step_refuses_mismatched_shapes_naming_key_and_both_shapes():
    with pytest.raises(ValueError, match=r"params\['W'\] has shape \(2, 3\) but grads\['W'\] has shape \(3, 2\)"):
        optim.SGD(lr=0.1).step({"W": np.zeros((2, 3))}, {"W": np.zeros((3, 2))})


def test_step_refuses_non_dicts():
    with pytest.raises(TypeError, match="'params' must be a dict"):
        optim.SGD(lr=0.1).step([np.zeros(1)], {"a": np.zeros(1)})
    with pytest.raises(TypeError, match="'grads' must be a dict"):
        optim.Adam().step({"a": np.zeros(1)}, None)


def test_step_refuses_params_that_cannot_be_updated_in_place():
    with pytest.raises(TypeError, match=r"params\['a'\] must be a float numpy array"):
        optim.SGD(lr=0.1).step({"a": [1.0, 2.0]}, {"a": np.zeros(2)})
    with pytest.raises(TypeError, match=r"params\['a'\] must be a float numpy array"):
        optim.SGD(lr=0.1).step({"a": np.zeros(2, dtype=np.int64)}, {"a": np.zeros(2)})


def test_step_refuses_non_finite_gradients():
    with pytest.raises(ValueError, match=r"grads\['a'\]' contains NaN or infinity"):
        optim.SGD(lr=0.1).step({"a": np.zeros(2)}, {"a": np.array([1.0, np.nan])})


def test_state_of_another_shape_is_refused():
    opt = optim.SGD(lr=0.1, momentum=0.9)
    opt.step({"a": np.zeros(2)}, {"a": np.ones(2)})
    with pytest.raises(ValueError, match=r"params\['a'\] has shape \(3,\), but the state kept for it has shape \(2,\)"):
        opt.step({"a": np.zeros(3)}, {"a": np.ones(3)})


def test_the_base_optimizer_has_no_update_rule():
    with pytest.raises(NotImplementedError):
        optim.Optimizer(0.1, 0.0).step({"w": np.ones(2)}, {"w": np.ones(2)})
