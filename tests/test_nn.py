"""Tests of bplib.nn: modules over the pure pairs, their parameters and gradients."""

import ast
import pathlib

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import as_matrix, linear_sizes, seeds

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
    inner = {n for n in _imports(BPLIB / "linear.py") if n.startswith("bplib")}
    assert inner and all(n == "bplib._validate" or n.startswith("bplib._validate.") for n in inner), inner


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


# --- a call that raises leaves no trace; refusals name the method (issue 13) ---


def _mlp(seed=0):
    rng = np.random.default_rng(seed)
    return nn.Sequential(nn.Linear(3, 4, rng), nn.Tanh(), nn.Linear(4, 2, rng))


def _state(model):
    """Every module's cache count and a copy of every gradient."""
    return [len(m._caches) for m in model._tree()], {k: g.copy() for k, g in model.grads.items()}


@pytest.mark.parametrize("mode", ["no", 1, 0.0, None, np.array(True)])
def test_train_refuses_a_non_bool(mode):
    m = nn.ReLU()
    with pytest.raises(TypeError, match=f"^ReLU.train: argument 'mode' must be True or False, got {type(mode).__name__}"):
        m.train(mode)
    assert m.training is True
    model = _mlp()
    model.eval()
    with pytest.raises(TypeError, match="^Sequential.train: argument 'mode' must be True or False"):
        model.train(mode)
    assert model.training is False and all(c.training is False for c in model.modules)  # nothing changed


def test_train_accepts_numpy_bools():
    model = _mlp().train(np.False_)
    assert model.training is False and all(c.training is False for c in model.modules)


def test_linear_backward_keeps_its_cache_when_dout_is_wrong():
    lin = nn.Linear(3, 2, np.random.default_rng(0))
    x = np.random.default_rng(1).standard_normal((5, 3))
    lin.forward(x)
    with pytest.raises(ValueError, match=r"^Linear.backward: linear_backward: argument 'dy' must have shape \(5, 2\), got \(5, 3\)$"):
        lin.backward(np.ones((5, 3)))
    assert len(lin._caches) == 1 and not lin.dW.any()  # the retry says nothing about 'no cache left'
    dx = lin.backward(np.ones((5, 2)))
    np.testing.assert_allclose(lin.dW, x.T @ np.ones((5, 2)))
    np.testing.assert_allclose(dx, np.ones((5, 2)) @ lin.W.T)
    assert lin._caches == []


@pytest.mark.parametrize("make", [nn.Sigmoid, nn.Tanh, nn.ReLU, nn.HalfSquaredError, nn.SoftmaxCrossEntropy])
def test_a_failed_backward_keeps_the_cache_of_every_wrapped_module(make):
    m = make()
    if isinstance(m, nn.SoftmaxCrossEntropy):
        m.forward(np.zeros((2, 3)), np.array([0, 2]))
        bad, good = float("nan"), 1.0
    elif isinstance(m, nn.HalfSquaredError):
        m.forward(np.zeros((2, 3)), np.ones((2, 3)))
        bad, good = "one", 1.0
    else:
        m.forward(np.zeros((2, 3)))
        bad, good = np.ones((3, 2)), np.ones((2, 3))
    with pytest.raises((TypeError, ValueError), match=f"^{type(m).__name__}.backward: "):
        m.backward(bad)
    assert len(m._caches) == 1
    m.backward(good)
    assert m._caches == []


def test_a_failed_sequential_backward_leaves_no_uneven_caches_and_adds_no_gradient():
    model, x = _mlp(), np.random.default_rng(2).standard_normal((5, 3))
    dout = np.random.default_rng(3).standard_normal((5, 2))
    model.forward(x)
    # Make the first module (the last to run backward) refuse, after modules 2 and 1 have popped their
    # caches and computed their gradients: give its cache a W of the wrong shape.
    model.modules[0]._caches[-1] = model.modules[0]._caches[-1]._replace(W=np.ones((3, 5)))
    before = _state(model)
    with pytest.raises(ValueError, match=r"^Sequential.backward: module 0 \(Linear\): Linear.backward: linear_backward: argument 'dy'"):
        model.backward(dout)
    after = _state(model)
    assert after[0] == before[0]  # every module still holds its one cache
    for k in before[1]:
        np.testing.assert_array_equal(after[1][k], before[1][k])  # and no gradient moved


def test_after_a_failed_backward_a_retry_gives_the_clean_gradients():
    x = np.random.default_rng(2).standard_normal((5, 3))
    dout = np.random.default_rng(3).standard_normal((5, 2))
    clean = _mlp()
    clean.forward(x)
    clean_dx = clean.backward(dout)
    model = _mlp()
    model.forward(x)
    with pytest.raises(ValueError, match=r"^Sequential.backward: module 2 \(Linear\): Linear.backward: linear_backward: "
                                         r"argument 'dy' must have shape \(5, 2\), got \(5, 3\)"):
        model.backward(np.ones((5, 3)))
    with pytest.raises(ValueError, match=r"^Sequential.backward: module 2 \(Linear\): .*'dy' contains NaN"):
        model.backward(np.full((5, 2), np.nan))
    dx = model.backward(dout)
    np.testing.assert_array_equal(dx, clean_dx)
    for k, g in clean.grads.items():
        np.testing.assert_array_equal(model.grads[k], g)
    assert all(m._caches == [] for m in model.modules)


def test_a_failed_sequential_forward_leaves_no_orphan_cache():
    model = nn.Sequential(nn.Linear(3, 4, np.random.default_rng(0)), nn.ReLU(), nn.Linear(5, 2, np.random.default_rng(1)))
    with pytest.raises(ValueError, match=r"^Sequential.forward: module 2 \(Linear\): Linear.forward: linear_forward: "
                                         r"argument 'x' has shape \(6, 4\) but 'W' has shape \(5, 2\)"):
        model.forward(np.ones((6, 3)))
    assert all(m._caches == [] for m in model.modules)  # modules 0 and 1 ran, but their caches are gone


def test_nested_sequential_failures_are_undone_as_a_whole():
    rng = np.random.default_rng(4)
    inner = nn.Sequential(nn.Linear(3, 3, rng), nn.Sigmoid())
    model = nn.Sequential(inner, nn.Linear(3, 2, rng), inner)  # inner is shared: two uses
    x = rng.standard_normal((4, 3))
    with pytest.raises(ValueError, match=r"^Sequential.forward: module 2 \(Sequential\): Sequential.forward: module 0 \(Linear\): "):
        model.forward(x)  # module 2 gets (4, 2), inner's Linear wants 3 columns
    assert all(m._caches == [] for m in model._tree())
    model = nn.Sequential(inner, nn.Linear(3, 3, rng), inner)
    model.forward(x)
    assert len(inner.modules[0]._caches) == 2
    before = _state(model)
    with pytest.raises(TypeError):
        model.backward(np.ones((4, 3), dtype=complex))
    after = _state(model)
    assert after[0] == before[0]
    dx = model.backward(np.ones((4, 3)))  # both uses of the shared Linear add up
    assert dx.shape == (4, 3) and all(m._caches == [] for m in model._tree())
    assert inner.modules[0].dW.any()


def test_refusals_name_the_method_that_was_called():
    with pytest.raises(ValueError, match=r"^Linear.forward: linear_forward: argument 'x' has shape \(2, 5\) but 'W' has shape \(3, 2\)"):
        nn.Linear(3, 2, np.random.default_rng(0)).forward(np.ones((2, 5)))
    with pytest.raises(ValueError, match="^Sigmoid.forward: sigmoid_forward: argument 'x' contains NaN"):
        nn.Sigmoid()(np.array([np.nan]))
    with pytest.raises(ValueError, match=r"^HalfSquaredError.forward: half_squared_error_forward: "
                                         r"argument 'y' must hold at least one example"):
        nn.HalfSquaredError()(np.zeros((0, 2)), np.zeros((0, 2)))
    with pytest.raises(TypeError, match="^SoftmaxCrossEntropy.forward: softmax_cross_entropy_forward: argument 'y' must be an integer"):
        nn.SoftmaxCrossEntropy()(np.zeros((2, 3)), [0, 1])


def test_modules_read_matrices_as_plain_arrays():
    model, x = _mlp(), np.random.default_rng(5).standard_normal((3, 3))
    y = model.forward(as_matrix(x))
    assert type(y) is np.ndarray
    model.clear_cache()
    np.testing.assert_array_equal(y, model.forward(x))
    loss_fn = nn.HalfSquaredError()
    assert loss_fn(as_matrix(np.ones((3, 3))), as_matrix(np.zeros((3, 3)))) == 1.5


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


# --- chapter 7, added: rectangular kernels and LeNet's subsampling --------------------


def test_conv2d_takes_a_rectangular_kernel():
    rng = np.random.default_rng(3)
    layer = nn.Conv2d(2, 3, (3, 1), rng, pad=1)
    assert layer.W.shape == (3, 2, 3, 1) and layer.b.shape == (3,)
    assert np.abs(layer.W).max() <= 1 / np.sqrt(2 * 3 * 1)
    assert layer.forward(np.zeros((4, 2, 5, 6))).shape == (4, 3, 5, 8)  # Ho = 5 + 2 - 3 + 1, Wo = 6 + 2 - 1 + 1
    layer.clear_cache()
    _module_check(layer, rng.standard_normal((2, 2, 4, 5)), rng)


@pytest.mark.parametrize("kernel_size, error, pattern", [
    ((3,), ValueError, r"'kernel_size' must be an integer or a pair \(kh, kw\), got \(3,\)"),
    ((3, 0), ValueError, "'kernel_size' must be at least 1"),
    ((2.5, 2), TypeError, "'kernel_size' must be an integer"),
    ("3", TypeError, "'kernel_size' must be an integer"),
])
def test_conv2d_refuses_a_bad_kernel_size(kernel_size, error, pattern):
    with pytest.raises(error, match="Conv2d: argument " + pattern):
        nn.Conv2d(1, 2, kernel_size, np.random.default_rng(0))


def test_subsample2d_starts_as_average_pooling_and_passes_gradient_checks():
    rng = np.random.default_rng(4)
    layer = nn.Subsample2d(3)
    np.testing.assert_array_equal(layer.alpha, np.full(3, 0.25))
    np.testing.assert_array_equal(layer.b, np.zeros(3))
    x = rng.standard_normal((2, 3, 4, 6))
    np.testing.assert_allclose(layer.forward(x), nn.AvgPool2d(2).forward(x), rtol=1e-12)
    layer.clear_cache()
    layer.alpha += rng.standard_normal(3)
    layer.b += rng.standard_normal(3)
    _module_check(layer, x, rng)
    overlapping = nn.Subsample2d(2, size=3, stride=2)
    assert overlapping.stride == 2 and overlapping.forward(np.zeros((1, 2, 7, 7))).shape == (1, 2, 3, 3)


def test_a_lenet_style_network_passes_an_end_to_end_gradient_check():
    from bplib import train

    rng = np.random.default_rng(6)
    model = nn.Sequential(nn.Conv2d(1, 2, 3, rng), nn.Tanh(), nn.Subsample2d(2), nn.Tanh(),
                          nn.Conv2d(2, 3, (2, 1), rng), nn.Tanh(), nn.Flatten(), nn.Linear(3 * 1 * 2, 4, rng))
    model.params["2.alpha"][...] = rng.standard_normal(2)
    x, y = rng.standard_normal((3, 1, 6, 6)), np.array([0, 3, 1])
    loss_fn = nn.SoftmaxCrossEntropy()
    model.zero_grad()
    loss_fn.forward(model.forward(x), y)
    model.backward(loss_fn.backward())
    numeric = train.numerical_param_grads(model, loss_fn, x, y, list(model.params))
    assert {"2.alpha", "2.b"} <= set(numeric)
    for name, g in numeric.items():
        np.testing.assert_allclose(model.grads[name], g, rtol=1e-6, atol=1e-9, err_msg=name)


@pytest.mark.parametrize("make, error, pattern", [
    (lambda: nn.Subsample2d(0), ValueError, "Subsample2d: argument 'C' must be at least 1"),
    (lambda: nn.Subsample2d(2, size=0), ValueError, "Subsample2d: argument 'size' must be at least 1"),
    (lambda: nn.Subsample2d(2, stride=1.0), TypeError, "Subsample2d: argument 'stride' must be an integer"),
])
def test_subsample2d_validates_its_arguments(make, error, pattern):
    with pytest.raises(error, match=pattern):
        make()


def test_subsample2d_names_the_function_on_a_channel_mismatch():
    with pytest.raises(ValueError, match=r"subsample_forward: argument 'alpha' must have shape \(3,\), got \(2,\)"):
        nn.Subsample2d(2).forward(np.zeros((1, 3, 4, 4)))


def test_flatten_returns_new_arrays_not_views():
    x, flat = np.ones((2, 3, 2, 2)), nn.Flatten()
    y = flat.forward(x)
    dout = np.ones(y.shape)
    dx = flat.backward(dout)
    assert not np.shares_memory(y, x) and not np.shares_memory(dx, dout)

