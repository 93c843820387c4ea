"""Tests of bplib.optim: each update against its closed form computed here by hand, all-or-nothing steps, schedulers."""

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


@pytest.mark.parametrize("p", [[1.0, 2.0], np.zeros(2, dtype=np.int64), np.zeros(2, dtype=np.float16), np.zeros(2, dtype=np.complex128)])
def test_step_refuses_params_that_cannot_be_updated_in_place(p):
    with pytest.raises(TypeError, match=r"SGD.step: params\['a'\] must be a float32 or float64 numpy array"):
        optim.SGD(lr=0.1).step({"a": p}, {"a": np.zeros(2)})


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


# --- What chapter 5 derives: momentum's velocity and Adam's bias correction, in closed form ---

@given(seeds(), st.floats(0.0, 0.99))
def test_momentum_velocity_under_a_constant_gradient_is_a_geometric_sum(seed, mu):
    # v_t = g (1 + mu + ... + mu^(t-1)) = g (1 - mu^t) / (1 - mu), which tends to g / (1 - mu)
    g = np.random.default_rng(seed).standard_normal(3)
    opt, w = optim.SGD(lr=0.01, momentum=mu), np.zeros(3)
    for t in range(1, 6):
        opt.step({"w": w}, {"w": g})
        if mu:
            np.testing.assert_allclose(opt.state["w"]["v"], g * (1 - mu**t) / (1 - mu), rtol=1e-12, atol=1e-15)


def test_momentum_velocity_under_alternating_gradients_stays_below_g():
    # g, -g, g, ...: v_t = g (1 - (-mu)^t) / (1 + mu) up to sign, of size at most |g|, tending to |g| / (1 + mu)
    mu, g = 0.9, np.array([2.0])
    opt, w = optim.SGD(lr=0.1, momentum=mu), np.zeros(1)
    for t in range(1, 40):
        opt.step({"w": w}, {"w": (-1) ** (t - 1) * g})
        v = opt.state["w"]["v"]
        np.testing.assert_allclose(v, (-1) ** (t - 1) * g * (1 - (-mu) ** t) / (1 + mu), rtol=1e-12)
        assert abs(v[0]) <= abs(g[0])


@given(seeds(), st.floats(0.0, 0.99), st.floats(0.0, 0.999))
def test_adam_moments_under_a_constant_gradient_are_biased_by_one_minus_beta_to_the_t(seed, b1, b2):
    g = np.random.default_rng(seed).standard_normal(4)
    opt, w = optim.Adam(lr=1e-3, beta1=b1, beta2=b2), np.zeros(4)
    for t in range(1, 6):
        opt.step({"w": w}, {"w": g})
        s = opt.state["w"]
        assert s["t"] == t
        np.testing.assert_allclose(s["m"], (1 - b1**t) * g, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(s["r"], (1 - b2**t) * g * g, rtol=1e-12, atol=1e-15)


def test_sgd_keeps_no_state_without_momentum_and_only_the_velocity_with_it():
    plain, heavy = optim.SGD(lr=0.1), optim.SGD(lr=0.1, momentum=0.5)
    for opt in (plain, heavy):
        opt.step({"w": np.zeros(2)}, {"w": np.ones(2)})
    assert plain.state == {"w": {}}
    assert set(heavy.state["w"]) == {"v"}


# --- A step is all or nothing ---

def _two_params(opt_factory):
    opt = opt_factory()
    params = {"a": np.array([1.0, 2.0]), "b": np.array([3.0, 4.0])}
    opt.step(params, {"a": np.ones(2), "b": np.ones(2)})  # some state to keep
    return opt, params


def _snapshot(opt, params):
    state = {k: {n: (v.copy() if isinstance(v, np.ndarray) else v) for n, v in s.items()} for k, s in opt.state.items()}
    return {k: v.copy() for k, v in params.items()}, state


OPTIMIZERS = [lambda: optim.SGD(lr=0.1), lambda: optim.SGD(lr=0.1, momentum=0.9), lambda: optim.Adam(lr=0.1)]
BAD_B = [
    ({"b": np.array([np.nan, 1.0])}, ValueError, "contains NaN or infinity"),
    ({"b": np.ones(3)}, ValueError, r"params\['b'\] has shape \(2,\) but grads\['b'\] has shape \(3,\)"),
    ({"b": "gradient"}, TypeError, r"grads\['b'\]"),
    ({"b": np.array([1e308, 1.0])}, ValueError, r"params\['b'\] overflows float64|state 'r' for params\['b'\] overflows"),
]


@pytest.mark.parametrize("make", OPTIMIZERS)
@pytest.mark.parametrize("bad, error, match", BAD_B)
def test_a_refused_step_changes_no_parameter_and_no_state(make, bad, error, match):
    opt, params = _two_params(make)
    if isinstance(opt, optim.SGD):
        opt.lr = 10.0  # 10 * 1e308 overflows; Adam overflows in g^2
    before, state_before = _snapshot(opt, params)
    with pytest.raises(error, match=match):
        opt.step(params, {"a": np.ones(2)} | bad)  # 'a' comes first and is fine
    after, state_after = _snapshot(opt, params)
    for k in params:
        np.testing.assert_array_equal(after[k], before[k])
    assert state_after.keys() == state_before.keys()
    for k in state_before:
        for n in state_before[k]:
            np.testing.assert_array_equal(state_after[k][n], state_before[k][n])


def test_a_decay_mask_that_does_not_answer_a_bool_is_refused_before_any_update():
    opt = optim.SGD(lr=0.1, weight_decay=0.1, decay_mask=lambda name, p: None if name == "b" else True)
    params = {"a": np.ones(2), "b": np.ones(2)}
    with pytest.raises(TypeError, match=r"decay_mask\('b', array\) must return a bool, got NoneType"):
        opt.step(params, {"a": np.ones(2), "b": np.ones(2)})
    np.testing.assert_array_equal(params["a"], np.ones(2))


# --- float32, float16 and overflow ---

def test_a_float32_parameter_never_becomes_infinite_silently():
    w = np.array([1.0, 2.0], dtype=np.float32)
    with pytest.raises(ValueError, match=r"SGD.step: the updated params\['w'\] does not fit in float32 \(largest \|value\| 1e\+300\)"):
        optim.SGD(lr=1.0).step({"w": w}, {"w": np.array([-1e300, 0.0])})  # a float64 gradient beyond float32
    np.testing.assert_array_equal(w, [1.0, 2.0])
    big = np.array([3e38], dtype=np.float32)
    with pytest.raises(ValueError, match="does not fit in float32"):
        optim.SGD(lr=1.0).step({"w": big}, {"w": np.array([-3e38], dtype=np.float32)})  # 6e38 > float32 max
    assert big[0] == np.float32(3e38)


def test_a_float32_parameter_is_updated_in_float64_and_rounded_once():
    w32 = np.array([1.0, -3.0], dtype=np.float32)
    g = np.array([1e-3, 2e-3])
    optim.SGD(lr=0.1).step({"w": w32}, {"w": g})
    assert w32.dtype == np.float32
    np.testing.assert_array_equal(w32, (np.array([1.0, -3.0]) - 0.1 * g).astype(np.float32))


def test_adam_with_a_float32_parameter_and_a_huge_gradient_takes_a_step_of_size_lr():
    w = np.zeros(2, dtype=np.float32)
    optim.Adam(lr=0.01).step({"w": w}, {"w": np.array([1e100, -1e100])})  # beyond float32, g^2 fine in float64
    np.testing.assert_allclose(w, [-0.01, 0.01], rtol=1e-6)


@pytest.mark.parametrize("g", [np.zeros(2, dtype=np.float16), np.zeros(2, dtype=np.complex64), np.array([True, False])])
def test_step_refuses_gradients_of_other_dtypes(g):
    with pytest.raises(TypeError, match=r"SGD.step: argument 'grads\['w'\]' must have dtype float32 or float64"):
        optim.SGD(lr=0.1).step({"w": np.zeros(2)}, {"w": g})


def test_step_refuses_read_only_and_shared_parameters():
    ro = np.zeros(2)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match=r"params\['w'\] is read-only"):
        optim.SGD(lr=0.1).step({"w": ro}, {"w": np.ones(2)})
    w = np.zeros(4)
    with pytest.raises(ValueError, match=r"params\['a'\] and params\['b'\] share memory"):
        optim.SGD(lr=0.1).step({"a": w, "b": w[1:3]}, {"a": np.ones(4), "b": np.ones(2)})
    np.testing.assert_array_equal(w, 0.0)
    optim.SGD(lr=0.1).step({"a": w[:2], "b": w[2:]}, {"a": np.ones(2), "b": np.ones(2)})  # disjoint views are fine
    np.testing.assert_allclose(w, -0.1)


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")
def test_np_matrix_arguments_give_the_elementwise_update():
    g = np.array([[1.0, 2.0], [3.0, 4.0]])
    p_arr, p_mat = np.ones((2, 2)), np.asmatrix(np.ones((2, 2)))
    optim.Adam(lr=0.1).step({"w": p_arr}, {"w": g})
    optim.Adam(lr=0.1).step({"w": p_mat}, {"w": np.asmatrix(g)})  # g * g must stay elementwise
    np.testing.assert_array_equal(np.asarray(p_mat), p_arr)


# --- Hyper-parameters ---

@pytest.mark.parametrize("make, error, match", [
    (lambda: optim.SGD(lr=float("nan")), TypeError, "SGD: argument 'lr' must be a finite real number"),
    (lambda: optim.SGD(lr=float("inf")), TypeError, "SGD: argument 'lr' must be a finite real number"),
    (lambda: optim.SGD(lr=True), TypeError, "SGD: argument 'lr' must be a finite real number"),
    (lambda: optim.SGD(lr=0.1, momentum=float("nan")), TypeError, "'momentum' must be a finite real number"),
    (lambda: optim.Adam(eps=float("inf")), TypeError, "Adam: argument 'eps' must be a finite real number"),
    (lambda: optim.Adam(beta1=None), TypeError, "Adam: argument 'beta1' must be a finite real number"),
    (lambda: optim.SGD(lr=0.1, decay_mask="biases"), TypeError, "SGD: argument 'decay_mask' must be None or a function"),
    (lambda: optim.Adam(decay_mask=3), TypeError, "Adam: argument 'decay_mask' must be None or a function"),
])
def test_constructors_refuse_bad_hyper_parameters(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_lr_is_validated_when_set_by_hand_too():
    opt = optim.Adam(lr=0.01)
    opt.lr = 0.001
    assert opt.lr == 0.001
    with pytest.raises(ValueError, match=r"Adam: argument 'lr' must lie in \(0, inf"):
        opt.lr = -1
    with pytest.raises(TypeError, match="Adam: argument 'lr' must be a finite real number"):
        opt.lr = "0.1"
    assert opt.lr == 0.001


# --- Weight decay that spares the biases ---

def test_weights_only_decays_matrices_and_spares_biases():
    assert optim.weights_only("0.W", np.zeros((3, 2))) and optim.weights_only("conv.W", np.zeros((2, 1, 3, 3)))
    assert not optim.weights_only("0.b", np.zeros(2))
    rng = np.random.default_rng(0)
    W, b, dW, db = rng.standard_normal((3, 2)), rng.standard_normal(2), rng.standard_normal((3, 2)), rng.standard_normal(2)
    params = {"W": W.copy(), "b": b.copy()}
    optim.SGD(lr=0.1, weight_decay=0.5, decay_mask=optim.weights_only).step(params, {"W": dW, "b": db})
    np.testing.assert_allclose(params["W"], (1 - 0.1 * 0.5) * W - 0.1 * dW, rtol=1e-14)
    np.testing.assert_allclose(params["b"], b - 0.1 * db, rtol=1e-14)  # no decay


@pytest.mark.parametrize("make", [lambda m: optim.SGD(lr=0.1, momentum=0.9, weight_decay=0.3, decay_mask=m),
                                  lambda m: optim.Adam(lr=0.1, weight_decay=0.3, decay_mask=m)])
def test_a_decay_mask_equals_decay_on_the_chosen_arrays_only(make):
    # one optimizer with a mask does what two optimizers (with and without decay) did before
    rng = np.random.default_rng(1)
    params = {"W": rng.standard_normal((2, 3)), "b": rng.standard_normal(3)}
    grads = {k: rng.standard_normal(v.shape) for k, v in params.items()}
    masked = _copy(params)
    opt = make(optim.weights_only)
    two = (make(None), make(lambda name, p: False))
    decayed, spared = {"W": params["W"].copy()}, {"b": params["b"].copy()}
    for _ in range(3):
        opt.step(masked, grads)
        two[0].step(decayed, {"W": grads["W"]})
        two[1].step(spared, {"b": grads["b"]})
    np.testing.assert_allclose(masked["W"], decayed["W"], rtol=1e-13)
    np.testing.assert_allclose(masked["b"], spared["b"], rtol=1e-13)


# --- Learning-rate schedulers ---

def test_step_lr_drops_by_gamma_every_step_size_epochs():
    opt = optim.SGD(lr=0.5)
    sched = optim.StepLR(opt, step_size=3, gamma=0.1)
    assert [sched.lr_at(e) for e in range(7)] == pytest.approx([0.5, 0.5, 0.5, 0.05, 0.05, 0.05, 0.005], rel=1e-12)
    seen = [sched.step() for _ in range(4)]  # after epochs 1..4: the rates for epochs 1..4
    assert seen == pytest.approx([0.5, 0.5, 0.05, 0.05], rel=1e-12) and opt.lr == seen[-1]


def test_cosine_lr_falls_along_half_a_cosine_and_stays_at_the_end():
    opt = optim.Adam(lr=0.1)
    sched = optim.CosineLR(opt, epochs=4, min_lr=0.02)
    # lr_e = 0.02 + 0.08 (1 + cos(pi e / 4)) / 2: cos = 1, 1/sqrt(2), 0, -1/sqrt(2)
    half = np.sqrt(0.5)
    expected = [0.1, 0.02 + 0.04 * (1 + half), 0.06, 0.02 + 0.04 * (1 - half)]
    assert [sched.lr_at(e) for e in range(4)] == pytest.approx(expected, rel=1e-12)
    assert sched.lr_at(4) == sched.lr_at(100) == sched.lr_at(3)  # past the end: the last rate
    for _ in range(10):
        sched.step()
    assert opt.lr == pytest.approx(expected[-1]) and opt.lr > 0.02


def test_cosine_lr_with_one_epoch_keeps_the_rate():
    opt = optim.SGD(lr=0.3)
    assert optim.CosineLR(opt, epochs=1).step() == 0.3


@pytest.mark.parametrize("make, error, match", [
    (lambda o: optim.StepLR("sgd", step_size=2), TypeError, "StepLR: argument 'optimizer' must be an optim.SGD or optim.Adam"),
    (lambda o: optim.StepLR(o, step_size=0), ValueError, "StepLR: argument 'step_size' must be at least 1"),
    (lambda o: optim.StepLR(o, step_size=2.5), TypeError, "StepLR: argument 'step_size' must be an integer"),
    (lambda o: optim.StepLR(o, step_size=2, gamma=0.0), ValueError, r"StepLR: argument 'gamma' must lie in \(0, 1\]"),
    (lambda o: optim.StepLR(o, step_size=2, gamma=1.5), ValueError, "'gamma' must lie in"),
    (lambda o: optim.CosineLR(None, epochs=3), TypeError, "CosineLR: argument 'optimizer'"),
    (lambda o: optim.CosineLR(o, epochs=0), ValueError, "CosineLR: argument 'epochs' must be at least 1"),
    (lambda o: optim.CosineLR(o, epochs=3, min_lr=0.1), ValueError, r"CosineLR: argument 'min_lr' must lie in \[0, 0.1\)"),
    (lambda o: optim.CosineLR(o, epochs=3, min_lr=-0.01), ValueError, "'min_lr' must lie in"),
    (lambda o: optim.CosineLR(o, epochs=3).lr_at(-1), ValueError, "CosineLR.lr_at: argument 'epoch' must be at least 0"),
    (lambda o: optim.StepLR(o, step_size=1).lr_at(1.0), TypeError, "StepLR.lr_at: argument 'epoch' must be an integer"),
])
def test_schedulers_validate_their_arguments(make, error, match):
    with pytest.raises(error, match=match):
        make(optim.SGD(lr=0.1))


def test_the_base_scheduler_has_no_schedule():
    with pytest.raises(NotImplementedError):
        optim._Scheduler(optim.SGD(lr=0.1)).step()
