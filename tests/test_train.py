"""Tests of bplib.train: the training loop, the evaluation mode, the history and validation."""

import numpy as np
import pytest

from bplib import losses, nn, optim, train


def _separable(n=40, seed=0):
    """Two classes on either side of the line x0 + x1 = 0, with a margin of at least 0.5."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-2, 2, size=(4 * n, 2))
    s = x.sum(axis=1)
    x = x[np.abs(s) > 0.5][:n]
    return x, (x.sum(axis=1) > 0).astype(np.int64)


def _model(rng, hidden=8, outputs=2):
    return nn.Sequential(nn.Linear(2, hidden, rng), nn.Tanh(), nn.Linear(hidden, outputs, rng))


def test_fit_reaches_zero_training_error_on_a_separable_problem():
    x, y = _separable()
    rng = np.random.default_rng(1)
    model = _model(rng)
    hist = train.fit(model, nn.SoftmaxCrossEntropy(), optim.SGD(lr=0.5, momentum=0.9), x, y, epochs=60, batch_size=8, rng=rng)
    assert train.accuracy(model, x, y) == 1.0
    assert hist["loss"][-1] < hist["loss"][0]
    assert set(hist) == {"loss", "accuracy"} and len(hist["loss"]) == 60


def test_fit_with_a_single_logit_and_half_squared_error_one_hot_targets():
    x, y = _separable(seed=2)
    rng = np.random.default_rng(3)
    model = _model(rng)
    t = np.eye(2)[y]  # (N, 2) one-hot targets: accuracy compares argmaxes
    train.fit(model, nn.HalfSquaredError(), optim.Adam(lr=0.05), x, t, epochs=80, batch_size=10, rng=rng)
    assert train.accuracy(model, x, y) == 1.0
    assert train.evaluate(model, None, x, t)[1] == 1.0


def test_fit_is_deterministic_under_a_seed_and_reports_validation():
    x, y = _separable(seed=4)

    def run():
        rng = np.random.default_rng(7)
        model = _model(rng)
        hist = train.fit(model, nn.SoftmaxCrossEntropy(), optim.SGD(lr=0.1), x[:30], y[:30], epochs=3, batch_size=7, rng=rng,
                         x_val=x[30:], y_val=y[30:])
        return model, hist

    (m1, h1), (m2, h2) = run(), run()
    assert h1 == h2 and set(h1) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    for k in m1.params:
        np.testing.assert_array_equal(m1.params[k], m2.params[k])


def test_history_loss_is_the_mean_of_the_minibatch_losses_before_each_update():
    x, y = _separable(seed=5)
    rng_a, rng_b = np.random.default_rng(9), np.random.default_rng(9)
    model_a, model_b = _model(rng_a), _model(rng_b)
    hist = train.fit(model_a, nn.SoftmaxCrossEntropy(), optim.SGD(lr=0.1), x, y, epochs=1, batch_size=16, rng=rng_a)
    # the same epoch by hand: same permutation, same steps
    order, loss_fn, opt, total = rng_b.permutation(len(y)), nn.SoftmaxCrossEntropy(), optim.SGD(lr=0.1), 0.0
    for i in range(0, len(y), 16):
        idx = order[i:i + 16]
        model_b.zero_grad()
        z = model_b.forward(x[idx])
        total += loss_fn.forward(z, y[idx]) * len(idx)
        model_b.backward(loss_fn.backward())
        opt.step(model_b.params, model_b.grads)
    assert hist["loss"][0] == pytest.approx(total / len(y), rel=1e-12)


def test_evaluate_restores_the_mode_and_leaves_no_caches():
    x, y = _separable(seed=6)
    model = _model(np.random.default_rng(0))
    seen = []

    class Spy(nn.Module):
        def forward(self, z):
            seen.append(self.training)
            return z

    wrapped = nn.Sequential(model, Spy())
    for mode in (True, False):
        wrapped.train(mode)
        loss, acc = train.evaluate(wrapped, nn.SoftmaxCrossEntropy(), x, y, batch_size=7)
        assert wrapped.training is mode and model.training is mode
        assert all(m._caches == [] for m in model.modules)
        assert 0.0 <= acc <= 1.0 and loss > 0
    assert seen and not any(seen)  # every forward in evaluate ran in evaluation mode


def test_evaluate_loss_equals_the_full_batch_loss():
    x, y = _separable(seed=8)
    model = _model(np.random.default_rng(2))
    z = model.forward(x)
    model.clear_cache()
    expected = losses.softmax_cross_entropy(z, y)
    assert train.evaluate(model, nn.SoftmaxCrossEntropy(), x, y, batch_size=6)[0] == pytest.approx(expected, rel=1e-12)


def test_predict_classes_argmax_and_single_logit():
    np.testing.assert_array_equal(train.predict_classes(np.array([[0.1, 2.0], [3.0, -1.0]])), [1, 0])
    np.testing.assert_array_equal(train.predict_classes(np.array([[0.3], [-0.2]])), [1, 0])
    # A diverged model's NaN outputs are wrong answers, not an error.
    assert train.predict_classes(np.array([[np.nan], [1.0]])).tolist() == [0, 1]
    with pytest.raises(ValueError, match=r"predict_classes: argument 'z' must have shape \(N, K\), got \(3,\)"):
        train.predict_classes(np.zeros(3))
    with pytest.raises(TypeError, match="predict_classes: argument 'z'"):
        train.predict_classes(None)


def test_progress_line_is_printed_only_when_asked_and_not_in_ci(capsys, monkeypatch):
    x, y = _separable(seed=9)
    rng = np.random.default_rng(0)
    args = (_model(rng), nn.SoftmaxCrossEntropy(), optim.SGD(lr=0.1), x, y)
    monkeypatch.delenv("CI", raising=False)
    train.fit(*args, epochs=2, batch_size=8, rng=rng)
    assert capsys.readouterr().out == ""
    train.fit(*args, epochs=2, batch_size=8, rng=rng, progress=True)
    out = capsys.readouterr().out
    assert "epoch 1/2" in out and "epoch 2/2" in out and out.endswith("\n")
    monkeypatch.setenv("CI", "1")
    train.fit(*args, epochs=2, batch_size=8, rng=rng, progress=True)
    assert capsys.readouterr().out == ""


def _fit_args():
    x, y = _separable(n=10)
    rng = np.random.default_rng(0)
    return dict(model=_model(rng), loss_fn=nn.SoftmaxCrossEntropy(), optimizer=optim.SGD(lr=0.1), x=x, y=y, epochs=1, batch_size=4, rng=rng)


@pytest.mark.parametrize("change, error, match", [
    (dict(model=lambda z: z), TypeError, "'model' must be an nn.Module"),
    (dict(loss_fn=object()), TypeError, "'loss_fn' must have a 'backward' method"),
    (dict(optimizer="sgd"), TypeError, "'optimizer' must have a 'step' method"),
    (dict(epochs=0), ValueError, "'epochs' must be at least 1"),
    (dict(epochs=2.0), TypeError, "'epochs' must be an integer"),
    (dict(batch_size=0), ValueError, "'batch_size' must be at least 1"),
    (dict(rng=0), TypeError, "'rng' must be a numpy Generator"),
    (dict(x=np.zeros(10)), ValueError, "'x' must have a batch axis and a feature axis"),
    (dict(x="data"), TypeError, "'x' must be a numpy array of floats"),
    (dict(y=[0, 1]), TypeError, "'y' must be a numpy array"),
    (dict(y=np.zeros(3, dtype=np.int64)), ValueError, r"'y' has shape \(3,\) but 'x' has shape \(10, 2\)"),
    (dict(y=np.zeros((), dtype=np.int64)), ValueError, r"'y' has shape \(\)"),
    (dict(x_val=np.zeros((3, 2))), ValueError, "'x_val' and 'y_val' must be given together"),
    (dict(x_val=np.zeros((3, 2)), y_val=np.zeros(2, dtype=np.int64)), ValueError, "'y_val' has shape"),
])
def test_fit_validates_arguments(change, error, match):
    args = _fit_args() | change
    with pytest.raises(error, match=match):
        train.fit(**args)


@pytest.mark.parametrize("call, error, match", [
    (lambda m, x, y: train.evaluate("model", None, x, y), TypeError, "evaluate: argument 'model'"),
    (lambda m, x, y: train.evaluate(m, None, x, y, batch_size=0), ValueError, "'batch_size' must be at least 1"),
    (lambda m, x, y: train.evaluate(m, None, x[:3], y), ValueError, "'y' has shape"),
    (lambda m, x, y: train.accuracy(m, x[:, 0], y), ValueError, "'x' must have a batch axis"),
    (lambda m, x, y: train.accuracy(None, x, y), TypeError, "argument 'model' must be an nn.Module"),
])
def test_evaluate_and_accuracy_validate_arguments(call, error, match):
    x, y = _separable(n=10)
    with pytest.raises(error, match=match):
        call(_model(np.random.default_rng(0)), x, y)


def test_train_step_is_one_sgd_step_by_hand():
    # One Linear(1, 1) unit with half squared error on one example: y = w x + b,
    # L = (y - t)^2 / 2, dL/dw = (y - t) x, dL/db = y - t. With w = 2, b = 1, x = 3, t = 4:
    # y = 7, L = 4.5, dw = 9, db = 3; lr = 0.1 gives w = 2 - 0.9 = 1.1 and b = 1 - 0.3 = 0.7.
    layer = nn.Linear(1, 1, np.random.default_rng(0))
    layer.W[...], layer.b[...] = 2.0, 1.0
    layer.dW += 5.0  # a stale gradient, which the step must zero first
    loss, z = train.train_step(layer, nn.HalfSquaredError(), optim.SGD(lr=0.1), np.array([[3.0]]), np.array([[4.0]]))
    assert loss == 4.5 and z.tolist() == [[7.0]]
    np.testing.assert_allclose([layer.W[0, 0], layer.b[0]], [1.1, 0.7], rtol=1e-15)
    np.testing.assert_array_equal([layer.dW[0, 0], layer.db[0]], [9.0, 3.0])


@pytest.mark.parametrize("model, loss_fn, optimizer, match", [
    ("model", nn.HalfSquaredError(), optim.SGD(lr=0.1), "train_step: argument 'model' must be an nn.Module"),
    (nn.Tanh(), losses.half_squared_error, optim.SGD(lr=0.1), "train_step: argument 'loss_fn' must have a 'backward' method"),
    (nn.Tanh(), nn.HalfSquaredError(), None, "train_step: argument 'optimizer' must have a 'step' method"),
])
def test_train_step_validates_its_parts(model, loss_fn, optimizer, match):
    with pytest.raises(TypeError, match=match):
        train.train_step(model, loss_fn, optimizer, np.zeros((1, 1)), np.zeros((1, 1)))


def test_numerical_param_grads_agree_with_backward_and_restore_the_parameters():
    rng = np.random.default_rng(0)
    model = nn.Sequential(nn.Linear(5, 4, rng), nn.Tanh(), nn.Linear(4, 3, rng))
    loss_fn = nn.SoftmaxCrossEntropy()
    x, y = rng.normal(size=(6, 5)), rng.integers(0, 3, 6)
    before = {k: v.copy() for k, v in model.params.items()}
    numeric = train.numerical_param_grads(model, loss_fn, x, y, ["0.W", "2.b"])
    for k, v in model.params.items():
        np.testing.assert_array_equal(v, before[k])  # restored exactly
    model.zero_grad()
    loss_fn.forward(model.forward(x), y)
    model.backward(loss_fn.backward(1.0))
    for k in numeric:
        assert numeric[k].shape == model.params[k].shape
        np.testing.assert_allclose(numeric[k], model.grads[k], rtol=1e-6, atol=1e-9)
    with pytest.raises(ValueError, match="'keys' must list names from model.params"):
        train.numerical_param_grads(model, loss_fn, x, y, ["9.W"])
    with pytest.raises(ValueError, match="'keys' must list names"):
        train.numerical_param_grads(model, loss_fn, x, y, "0.W")
    with pytest.raises(TypeError, match="'model' must be an nn.Module"):
        train.numerical_param_grads("model", loss_fn, x, y, ["0.W"])


def test_seed_summary_mean_sample_std_and_range():
    s = train.seed_summary([0.95, 0.97, 0.96, 0.98, 0.94])
    assert s.mean == pytest.approx(0.96) and s.n == 5
    assert s.std == pytest.approx(np.sqrt(0.001 / 4))  # squared deviations sum to 0.001
    assert (s.low, s.high) == (0.94, 0.98)
    assert s.format(2) == "0.96 +- 0.02 (0.94 to 0.98, 5 seeds)"
    with pytest.raises(ValueError, match="needs at least 2 seeds"):
        train.seed_summary([0.9])
    with pytest.raises(ValueError, match="contains NaN"):
        train.seed_summary([0.9, float("nan")])
