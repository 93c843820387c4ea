"""Tests of bplib.nn: modules over the pure pairs, their parameters and gradients."""

import ast
import pathlib

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import linear_sizes, seeds

from bplib import nn
from bplib.gradcheck import numerical_gradient

BPLIB = pathlib.Path(nn.__file__).resolve().parent


def _loss_and_grads(model, x, t):
    """Run forward and backward once; return the loss and a copy of every gradient."""
    loss_fn = nn.HalfSquaredError()
    model.zero_grad()
    loss = loss_fn(model(x), t)
    model.backward(loss_fn.backward())
    return loss, {k: g.copy() for k, g in model.grads.items()}


def _numerical_grads(model, x, t):
    """Central differences of the loss in every parameter, perturbing the module's own arrays."""
    out = {}
    for name, p in model.params.items():
        def f(v, p=p):
            saved = p.copy()
            p[...] = v
            loss = nn.HalfSquaredError()(model(x), t)
            model.clear_cache()
            p[...] = saved
            return loss
        out[name] = numerical_gradient(f, p.copy())
    return out


@given(linear_sizes, st.integers(1, 4), st.sampled_from([nn.Sigmoid, nn.Tanh, nn.ReLU]), seeds())
def test_sequential_gradients_match_numerical(sizes, hidden, act, seed):
    n, d, m = sizes
    rng = np.random.default_rng(seed)
    model = nn.Sequential(nn.Linear(d, hidden, rng), act(), nn.Linear(hidden, m, rng))
    x, t = rng.standard_normal((n, d)), rng.standard_normal((n, m))
    if act is nn.ReLU:  # keep every pre-activation away from the kink at 0
        h = x @ model.modules[0].W + model.modules[0].b
        if np.min(np.abs(h)) < 1e-3:
            return
    _, grads = _loss_and_grads(model, x, t)
    numeric = _numerical_grads(model, x, t)
    for name in grads:
        np.testing.assert_allclose(grads[name], numeric[name], rtol=1e-5, atol=1e-8, err_msg=name)


def test_mazur_example():
    # Expected values are Mazur's own hand computations (2015): dE/dw5, new w5, dE/dw1, new w1.
    lin1 = nn.Linear(2, 2, np.random.default_rng(0))
    lin2 = nn.Linear(2, 2, np.random.default_rng(0))
    lin1.W[...] = [[0.15, 0.25], [0.20, 0.30]]  # column j feeds hidden neuron j
    lin1.b[...] = 0.35
    lin2.W[...] = [[0.40, 0.50], [0.45, 0.55]]
    lin2.b[...] = 0.60
    model = nn.Sequential(lin1, nn.Sigmoid(), lin2, nn.Sigmoid())
    loss, grads = _loss_and_grads(model, np.array([[0.05, 0.10]]), np.array([[0.01, 0.99]]))
    assert loss == pytest.approx(0.298371109, abs=1e-9)
    assert grads["2.W"][0, 0] == pytest.approx(0.082167041, abs=1e-9)
    assert grads["0.W"][0, 0] == pytest.approx(0.000438568, abs=1e-9)
    assert 0.40 - 0.5 * grads["2.W"][0, 0] == pytest.approx(0.35891648, abs=1e-8)
    assert 0.15 - 0.5 * grads["0.W"][0, 0] == pytest.approx(0.149780716, abs=1e-9)


def test_shared_module_sums_its_gradients():
    rng = np.random.default_rng(1)
    shared = nn.Linear(3, 3, rng)
    model = nn.Sequential(shared, nn.Tanh(), shared)
    x, t = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    _, grads = _loss_and_grads(model, x, t)
    assert set(grads) == {"0.W", "0.b"}  # listed once, under its first name
    numeric = _numerical_grads(model, x, t)  # perturbs W in both uses at once: the total derivative
    for name in grads:
        np.testing.assert_allclose(grads[name], numeric[name], rtol=1e-6, atol=1e-9)


def test_gradients_accumulate_until_zero_grad():
    rng = np.random.default_rng(2)
    lin = nn.Linear(3, 2, rng)
    x, dy = rng.standard_normal((5, 3)), rng.standard_normal((5, 2))
    lin(x)
    lin.backward(dy)
    once = {k: g.copy() for k, g in lin.grads.items()}
    lin(x)
    lin.backward(dy)
    for k in once:
        np.testing.assert_allclose(lin.grads[k], 2 * once[k], rtol=1e-12)
    lin.zero_grad()
    assert all(np.all(g == 0) for g in lin.grads.values())


def test_params_and_grads_by_name():
    rng = np.random.default_rng(3)
    model = nn.Sequential(nn.Linear(4, 3, rng), nn.ReLU(), nn.Linear(3, 2, rng), nn.Sequential(nn.Sigmoid(), nn.Linear(2, 1, rng)))
    assert list(model.params) == ["0.W", "0.b", "2.W", "2.b", "3.1.W", "3.1.b"]
    assert list(model.grads) == list(model.params)
    for k, p in model.params.items():
        assert model.grads[k].shape == p.shape
    assert model.params["2.W"] is model.modules[2].W  # the module's own array: in-place updates reach it


def test_linear_init_range_and_seed():
    lin = nn.Linear(16, 5, np.random.default_rng(4))
    assert lin.W.shape == (16, 5) and lin.b.shape == (5,)
    assert np.max(np.abs(lin.W)) <= 0.25 and np.max(np.abs(lin.b)) <= 0.25  # 1 / sqrt(16)
    again = nn.Linear(16, 5, np.random.default_rng(4))
    np.testing.assert_array_equal(lin.W, again.W)


def test_forward_does_not_mutate_input():
    rng = np.random.default_rng(5)
    model = nn.Sequential(nn.Linear(3, 4, rng), nn.Sigmoid(), nn.Linear(4, 2, rng))
    x = rng.standard_normal((2, 3))
    x_copy = x.copy()
    dy = np.ones((2, 2))
    model(x)
    model.backward(dy)
    np.testing.assert_array_equal(x, x_copy)
    np.testing.assert_array_equal(dy, np.ones((2, 2)))


def test_train_and_eval_flags_propagate():
    inner = nn.ReLU()
    model = nn.Sequential(nn.Linear(2, 2, np.random.default_rng(0)), nn.Sequential(inner))
    assert model.training and inner.training
    assert model.eval() is model
    assert not model.training and not inner.training
    model.train()
    assert inner.training


def test_clear_cache_forgets_forward_calls():
    model = nn.Sequential(nn.Linear(2, 2, np.random.default_rng(0)), nn.Tanh())
    model(np.ones((1, 2)))
    model.clear_cache()
    with pytest.raises(RuntimeError, match="Tanh.backward: no cache left"):
        model.backward(np.ones((1, 2)))


def test_backward_without_forward():
    with pytest.raises(RuntimeError, match="Linear.backward: no cache left"):
        nn.Linear(2, 2, np.random.default_rng(0)).backward(np.ones((1, 2)))
    with pytest.raises(RuntimeError, match="HalfSquaredError.backward"):
        nn.HalfSquaredError().backward()


def test_base_module_is_abstract():
    m = nn.Module()
    assert m.params == {} and m.grads == {}
    with pytest.raises(NotImplementedError):
        m.forward(np.ones(1))
    with pytest.raises(NotImplementedError):
        m.backward(np.ones(1))


@pytest.mark.parametrize(
    ("args", "error", "pattern"),
    [
        ((0, 2), ValueError, "Linear: argument 'D' must be at least 1"),
        ((2, 0), ValueError, "Linear: argument 'M' must be at least 1"),
        ((2.0, 2), TypeError, "Linear: argument 'D' must be an integer"),
        ((2, "3"), TypeError, "Linear: argument 'M' must be an integer"),
    ],
)
def test_linear_bad_sizes(args, error, pattern):
    with pytest.raises(error, match=pattern):
        nn.Linear(*args, np.random.default_rng(0))


def test_linear_bad_rng():
    with pytest.raises(TypeError, match="Linear: argument 'rng' must be a numpy Generator"):
        nn.Linear(2, 2, 0)


def test_linear_shape_error_names_both_shapes():
    lin = nn.Linear(4, 2, np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"'x' has shape \(5, 3\) but 'W' has shape \(4, 2\)"):
        lin(np.zeros((5, 3)))


def test_sequential_refuses_non_modules():
    with pytest.raises(TypeError, match="Sequential: argument 1 must be a Module, got function"):
        nn.Sequential(nn.ReLU(), lambda v: v)


def test_loss_shape_error():
    with pytest.raises(ValueError, match="'y' has shape"):
        nn.HalfSquaredError()(np.zeros((2, 3)), np.zeros((2, 2)))


def _imports(path):
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return names


@pytest.mark.parametrize("module", ["linear", "activations", "losses", "gradcheck", "_validate"])
def test_nothing_below_imports_nn(module):
    assert "bplib.nn" not in _imports(BPLIB / f"{module}.py")


def test_linear_imports_validate_only():
    assert {n for n in _imports(BPLIB / "linear.py") if n.startswith("bplib")} <= {"bplib._validate"} | {
        f"bplib._validate.{f}" for f in ("as_float_array", "check_cache", "check_shape")
    }


# --- modules of chapters 6 to 9 ---------------------------------------------


def _module_check(module, x, rng, tol=1e-6):
    """Check a module's dx and parameter gradients against central differences of sum(y * dout)."""
    module.zero_grad()
    y = module.forward(x)
    dout = rng.standard_normal(y.shape)
    dx = module.backward(dout)

    def f_of(v, name=None):
        if name is None:
            out = module.forward(v)
        else:
            saved = module.params[name].copy()
            module.params[name][...] = v
            out = module.forward(x)
            module.params[name][...] = saved
        module.clear_cache()
        return float(np.sum(out * dout))

    assert dx.shape == np.shape(x)
    np.testing.assert_allclose(dx, numerical_gradient(f_of, x), rtol=tol, atol=1e-7)
    for name, p in module.params.items():
        numeric = numerical_gradient(lambda v, name=name: f_of(v, name), p)
        np.testing.assert_allclose(module.grads[name], numeric, rtol=tol, atol=1e-7, err_msg=name)


def _no_ties(rng, shape):
    # distinct values, so that every pooling window has a unique maximum
    return rng.permutation(np.prod(shape)).reshape(shape) / np.prod(shape) + rng.standard_normal(shape) * 1e-3


@pytest.mark.parametrize("make, shape", [
    (lambda rng: nn.Conv2d(2, 3, 3, rng, stride=2, pad=1), (2, 2, 5, 5)),
    (lambda rng: nn.MaxPool2d(2), (2, 2, 4, 4)),
    (lambda rng: nn.AvgPool2d(3, stride=1), (1, 2, 4, 5)),
    (lambda rng: nn.Flatten(), (2, 3, 2, 2)),
    (lambda rng: nn.RNN(3, 4, rng), (2, 5, 3)),
    (lambda rng: nn.LSTM(3, 2, rng), (2, 4, 3)),
    (lambda rng: nn.BatchNorm1d(3), (5, 3)),
    (lambda rng: nn.BatchNorm2d(2), (3, 2, 2, 2)),
    (lambda rng: nn.LayerNorm(4), (3, 4)),
])
def test_new_modules_pass_gradient_checks(make, shape):
    rng = np.random.default_rng(11)
    module = make(rng)
    for p in module.params.values():  # move gamma and beta off their trivial start
        p += 0.3 * rng.standard_normal(p.shape)
    _module_check(module, _no_ties(rng, shape), rng)


def test_batchnorm_in_eval_mode_passes_gradient_check_and_uses_running_stats():
    rng = np.random.default_rng(2)
    bn = nn.BatchNorm1d(3)
    x = rng.standard_normal((8, 3)) * 2 + 1
    bn.forward(x)
    bn.clear_cache()
    mean, var = bn.running_mean.copy(), bn.running_var.copy()
    # momentum 0.1 from mean 0 and variance 1, with the unbiased batch variance
    np.testing.assert_allclose(mean, 0.1 * x.mean(axis=0))
    np.testing.assert_allclose(var, 0.9 + 0.1 * x.var(axis=0, ddof=1))
    bn.eval()
    y = bn.forward(x)
    bn.clear_cache()
    np.testing.assert_allclose(y, (x - mean) / np.sqrt(var + 1e-5))
    np.testing.assert_array_equal(bn.running_mean, mean)  # eval leaves the statistics alone
    _module_check(bn, x, rng)


def test_cnn_and_cross_entropy_end_to_end():
    rng = np.random.default_rng(5)
    model = nn.Sequential(nn.Conv2d(1, 2, 3, rng, pad=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8, 3, rng))
    loss_fn = nn.SoftmaxCrossEntropy()
    x, y = _no_ties(rng, (4, 1, 4, 4)), np.array([0, 2, 1, 2])

    def loss_of(v, name):
        saved = model.params[name].copy()
        model.params[name][...] = v
        value = loss_fn.forward(model.forward(x), y)
        model.params[name][...] = saved
        model.clear_cache()
        loss_fn.clear_cache()
        return value

    model.zero_grad()
    loss_fn.forward(model.forward(x), y)
    model.backward(loss_fn.backward())
    assert set(model.grads) == {"0.W", "0.b", "4.W", "4.b"}
    for name, p in model.params.items():
        np.testing.assert_allclose(model.grads[name], numerical_gradient(lambda v, n=name: loss_of(v, n), p), rtol=1e-6, atol=1e-8)


def test_rnn_keeps_dh0_and_accepts_h0():
    rng = np.random.default_rng(3)
    layer = nn.RNN(2, 3, rng)
    x, h0 = rng.standard_normal((2, 4, 2)), rng.standard_normal((2, 3))
    h = layer.forward(x, h0)
    assert h.shape == (2, 4, 3)
    layer.backward(np.ones_like(h))
    assert layer.dh0.shape == (2, 3)
    assert nn.LSTM(2, 3, rng).Wx.shape == (2, 12)


@pytest.mark.parametrize("make, pattern", [
    (lambda: nn.Conv2d(0, 2, 3, np.random.default_rng(0)), "'C' must be at least 1"),
    (lambda: nn.Conv2d(1, 2, 3, 0), "'rng' must be a numpy Generator"),
    (lambda: nn.Conv2d(1, 2, 3, np.random.default_rng(0), stride=0), "'stride' must be at least 1"),
    (lambda: nn.MaxPool2d(0), "'size' must be at least 1"),
    (lambda: nn.AvgPool2d(2, stride=1.5), "'stride' must be an integer"),
    (lambda: nn.RNN(3, 0, np.random.default_rng(0)), "'Dh' must be at least 1"),
    (lambda: nn.LSTM(3, 2, None), "LSTM: argument 'rng'"),
    (lambda: nn.BatchNorm1d(0), "'D' must be at least 1"),
    (lambda: nn.LayerNorm(2.0), "'D' must be an integer"),
])
def test_new_modules_validate_their_arguments(make, pattern):
    with pytest.raises((TypeError, ValueError), match=pattern):
        make()


def test_new_modules_pass_on_shape_errors():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="'x'"):
        nn.Conv2d(3, 2, 3, rng).forward(np.zeros((1, 2, 5, 5)))
    with pytest.raises(ValueError, match="'x'"):
        nn.RNN(3, 2, rng).forward(np.zeros((1, 4, 5)))
    with pytest.raises(ValueError, match="'y'"):
        nn.SoftmaxCrossEntropy().forward(np.zeros((2, 3)), np.array([0, 1, 2]))


def test_last_step():
    rng = np.random.default_rng(4)
    layer = nn.LastStep()
    h = rng.standard_normal((2, 3, 4))
    np.testing.assert_array_equal(layer.forward(h), h[:, -1])
    dh = layer.backward(np.ones((2, 4)))
    assert dh.shape == (2, 3, 4) and dh[:, :-1].sum() == 0 and dh[:, -1].sum() == 8
    layer.forward(h)
    with pytest.raises(ValueError, match=r"'dout' has shape \(2, 3\) but h\[:, -1\] has shape \(2, 4\)"):
        layer.backward(np.ones((2, 3)))
    _module_check(nn.LastStep(), h, rng)


def test_flatten_and_last_step_validate_their_inputs():
    with pytest.raises(ValueError, match=r"Flatten.forward: argument 'x' must have a batch axis, got shape \(\)"):
        nn.Flatten().forward(1.0)
    with pytest.raises(TypeError, match="Flatten.forward: argument 'x'"):
        nn.Flatten().forward("x")
    flat = nn.Flatten()
    assert flat.forward(np.zeros((2, 3, 4))).shape == (2, 12)
    with pytest.raises(ValueError, match=r"Flatten.backward: argument 'dout' must have shape \(2, 12\), got \(2, 11\)"):
        flat.backward(np.zeros((2, 11)))
    with pytest.raises(ValueError, match=r"LastStep.forward: argument 'h' must have 3 dimensions, got shape \(2, 3\)"):
        nn.LastStep().forward(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"LastStep.forward: argument 'h' must have at least one time step, got shape \(2, 0, 3\)"):
        nn.LastStep().forward(np.zeros((2, 0, 3)))


# --- Chapter 5: nn.Dropout (appended by the chapter 5 author) ---

def test_dropout_in_training_mode_zeroes_about_p_and_scales_the_rest():
    x = np.ones((200, 50))
    drop = nn.Dropout(0.3, np.random.default_rng(0))
    y = drop.forward(x)
    kept = y != 0
    np.testing.assert_allclose(y[kept], 1 / 0.7, rtol=1e-15)  # survivors are scaled by 1 / (1 - p)
    assert abs(1 - kept.mean() - 0.3) < 0.01  # 10,000 draws: standard error about 0.005
    assert abs(y.mean() - 1.0) < 0.02  # E[y] = x


def test_dropout_backward_uses_the_mask_of_its_own_forward_call_and_equals_central_differences():
    rng = np.random.default_rng(1)
    x1, x2, d1, d2 = (rng.standard_normal((4, 6)) for _ in range(4))
    drop = nn.Dropout(0.5, np.random.default_rng(2))
    y1, y2 = drop.forward(x1), drop.forward(x2)  # two masks, two caches
    dx2, dx1 = drop.backward(d2), drop.backward(d1)  # backward in reverse order
    np.testing.assert_array_equal(dx1, d1 * np.where(x1 != 0, y1 / x1, 0.0))
    np.testing.assert_array_equal(dx2, d2 * np.where(x2 != 0, y2 / x2, 0.0))
    mask = np.where(x1 != 0, y1 / x1, 0.0)  # fixed mask: y = x * mask is linear in x
    numeric = numerical_gradient(lambda v: np.sum(v * mask * d1), x1)
    np.testing.assert_allclose(dx1, numeric, rtol=1e-7, atol=1e-9)


def test_dropout_in_evaluation_mode_is_the_identity_and_follows_sequential():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((5, 4))
    model = nn.Sequential(nn.Linear(4, 3, rng), nn.Dropout(0.9, np.random.default_rng(4)))
    model.eval()
    assert model.modules[1].training is False
    expected = x @ model.modules[0].W + model.modules[0].b
    np.testing.assert_allclose(model.forward(x), expected, rtol=1e-15)
    np.testing.assert_array_equal(model.backward(np.ones((5, 3))), np.ones((5, 3)) @ model.modules[0].W.T)
    assert model.params.keys() == {"0.W", "0.b"}  # dropout has no parameters


def test_dropout_with_p_zero_keeps_everything():
    x = np.random.default_rng(5).standard_normal((3, 3))
    np.testing.assert_array_equal(nn.Dropout(0.0, np.random.default_rng(0)).forward(x), x)


@pytest.mark.parametrize("p, rng, error, match", [
    (1.0, np.random.default_rng(0), ValueError, r"Dropout: argument 'p' must lie in \[0.0, 1.0\)"),
    (-0.1, np.random.default_rng(0), ValueError, "Dropout: argument 'p' must lie in"),
    ("0.5", np.random.default_rng(0), TypeError, "Dropout: argument 'p' must be a finite real number"),
    (0.5, 0, TypeError, "Dropout: argument 'rng' must be a numpy Generator"),
])
def test_dropout_validates_its_arguments(p, rng, error, match):
    with pytest.raises(error, match=match):
        nn.Dropout(p, rng)


def test_dropout_backward_refuses_a_wrong_dout_and_a_missing_forward():
    drop = nn.Dropout(0.5, np.random.default_rng(0))
    with pytest.raises(RuntimeError, match="Dropout.backward: no cache left"):
        drop.backward(np.ones((2, 2)))
    drop.forward(np.ones((2, 2)))
    with pytest.raises(ValueError, match="dropout_backward: argument 'dout' has shape"):
        drop.backward(np.ones((3, 2)))


# ================================================================ chapters 8 and 9: RNN, LSTM, LastStep, BatchNorm1d,
# BatchNorm2d and LayerNorm (issue 13: inputs checked by the module, hyper-parameters checked at construction)


@pytest.mark.parametrize("make", [nn.RNN, nn.LSTM])
@pytest.mark.parametrize("x, match", [
    (5.0, r"must have 3 dimensions, got shape \(\)"),
    (np.zeros((2, 3)), r"must have 3 dimensions, got shape \(2, 3\)"),
    ("x", "must be a numpy array"),
    (np.full((1, 2, 3), np.nan), "contains NaN"),
])
def test_recurrent_modules_check_x_themselves(make, x, match):
    layer = make(3, 2, np.random.default_rng(0))
    with pytest.raises((ValueError, TypeError), match=f"^{make.__name__}.forward: argument 'x' {match}"):
        layer.forward(x)


def test_lstm_module_carries_the_cell_state():
    from bplib import rnn  # imported here: the top of the file belongs to the other modules' tests

    rng = np.random.default_rng(21)
    layer = nn.LSTM(3, 4, rng)
    x, h0, c0 = rng.standard_normal((2, 5, 3)), rng.standard_normal((2, 4)), rng.standard_normal((2, 4))
    h = layer.forward(x, h0, c0)
    h_want, c_want, cache = rnn.lstm_forward(x, h0, layer.Wx, layer.Wh, layer.b, c0)
    np.testing.assert_array_equal(h, h_want)
    np.testing.assert_array_equal(layer.c_last, c_want)
    dh = rng.standard_normal(h.shape)
    layer.zero_grad()
    dx = layer.backward(dh)
    dx_want, dh0, dWx, dWh, db, dc0 = rnn.lstm_backward(dh, cache)
    for got, want in ((dx, dx_want), (layer.dh0, dh0), (layer.dc0, dc0), (layer.dWx, dWx), (layer.dWh, dWh), (layer.db, db)):
        np.testing.assert_array_equal(got, want)
    _module_check(nn.LSTM(3, 2, rng), rng.standard_normal((2, 3, 3)), rng)


def test_last_step_backward_checks_dout_and_keeps_its_cache_on_a_refusal():
    layer = nn.LastStep()
    h = np.random.default_rng(22).standard_normal((2, 3, 4)).astype(np.float32)
    layer.forward(h)
    for bad, error, match in [
        (np.full((2, 4), np.nan), ValueError, "contains NaN"),
        (np.ones((2, 4), dtype=complex), TypeError, "must have dtype float32 or float64"),
        (np.ones((2, 4), dtype=bool), TypeError, "must have dtype float32 or float64"),
        ("dout", TypeError, "must be a numpy array"),
        (np.ones(4), ValueError, "must have 2 dimensions"),
        (np.ones((2, 3)), ValueError, r"has shape \(2, 3\) but h\[:, -1\] has shape \(2, 4\)"),
    ]:
        with pytest.raises(error, match=f"^LastStep.backward: argument 'dout' {match}"):
            layer.backward(bad)
    dh = layer.backward(np.ones((2, 4), dtype=np.float32))  # the cache survived every refusal
    assert dh.dtype == np.float32 and dh.shape == (2, 3, 4) and dh[:, -1].sum() == 8 and dh[:, :-1].sum() == 0
    with pytest.raises(RuntimeError, match="LastStep.backward: no cache left"):
        layer.backward(np.ones((2, 4)))


@pytest.mark.parametrize("make, match", [
    (lambda: nn.BatchNorm1d(3, momentum=5), r"BatchNorm1d: argument 'momentum' must lie in \[0, 1\], got 5"),
    (lambda: nn.BatchNorm1d(3, momentum=-0.1), r"BatchNorm1d: argument 'momentum' must lie in \[0, 1\]"),
    (lambda: nn.BatchNorm1d(3, eps=0), r"BatchNorm1d: argument 'eps' must lie in \(0, inf"),
    (lambda: nn.BatchNorm2d(3, momentum=1.5), r"BatchNorm2d: argument 'momentum' must lie in \[0, 1\]"),
    (lambda: nn.BatchNorm2d(3, eps=-1e-5), r"BatchNorm2d: argument 'eps' must lie in \(0, inf"),
    (lambda: nn.LayerNorm(3, eps=0), r"LayerNorm: argument 'eps' must lie in \(0, inf"),
    (lambda: nn.LayerNorm(3, eps=float("nan")), "LayerNorm: argument 'eps' must be a finite real number"),
    (lambda: nn.BatchNorm1d(3, momentum="0.1"), "BatchNorm1d: argument 'momentum' must be a finite real number"),
])
def test_norm_modules_check_hyperparameters_at_construction(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()
