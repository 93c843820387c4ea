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
    with pytest.raises(ValueError, match=r"predict_classes: the model's output 'z' must have shape \(N, K\) with K >= 1, got \(3,\)"):
        train.predict_classes(np.zeros(3))
    with pytest.raises(ValueError, match=r"K >= 1, got \(3, 0\)"):
        train.predict_classes(np.zeros((3, 0)))
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
    (dict(loss_fn=object()), TypeError, "'loss_fn' must be a loss module .* with a 'forward' method"),
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
    (nn.Tanh(), losses.half_squared_error, optim.SGD(lr=0.1), "train_step: argument 'loss_fn' must be a loss module"),
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
    with pytest.raises(TypeError, match="'keys' must be a list of names"):
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


# --- Empty batches, wrong labels and wrong loss modules are refused clearly ---

@pytest.mark.parametrize("call, fn", [
    (lambda m, x, y: train.fit(m, nn.SoftmaxCrossEntropy(), optim.SGD(lr=0.1), x[:0], y[:0], epochs=1, batch_size=4,
                               rng=np.random.default_rng(0)), "fit"),
    (lambda m, x, y: train.fit(m, nn.SoftmaxCrossEntropy(), optim.SGD(lr=0.1), x, y, epochs=1, batch_size=4,
                               rng=np.random.default_rng(0), x_val=x[:0], y_val=y[:0]), "fit"),
    (lambda m, x, y: train.evaluate(m, nn.SoftmaxCrossEntropy(), x[:0], y[:0]), "evaluate"),
    (lambda m, x, y: train.accuracy(m, x[:0], y[:0]), "accuracy"),
    (lambda m, x, y: train.train_step(m, nn.SoftmaxCrossEntropy(), optim.SGD(lr=0.1), x[:0], y[:0]), "train_step"),
])
def test_an_empty_data_set_is_refused_naming_the_function(call, fn):
    x, y = _separable(n=10)
    with pytest.raises(ValueError, match=rf"^{fn}: argument 'x(_val)?' holds no examples \(shape \(0, 2\)\)"):
        call(_model(np.random.default_rng(0)), x, y)


@pytest.mark.parametrize("loss_fn", ["x", 3, losses.softmax_cross_entropy])
def test_evaluate_refuses_a_loss_that_is_not_a_module(loss_fn):
    x, y = _separable(n=10)
    match = r"evaluate: argument 'loss_fn' must be a loss module \(such as nn.SoftmaxCrossEntropy\(\)\) or None"
    with pytest.raises(TypeError, match=match):
        train.evaluate(_model(np.random.default_rng(0)), loss_fn, x, y)


@pytest.mark.parametrize("y_bad, error, match", [
    (np.array([0, 1, 2, 0, 1, 0, 1, 0, 1, 0]), ValueError, r"accuracy: labels 'y' must be whole numbers in \[0, 2\)"),
    (np.array([-1, 1, 0, 0, 1, 0, 1, 0, 1, 0]), ValueError, r"whole numbers in \[0, 2\) .* got values from -1 to 1"),
    (np.full(10, 0.5), ValueError, "whole numbers"),
    (np.array(list("0101010101")), TypeError, "accuracy: argument 'y' must hold integer labels or float targets, got dtype <U1"),
    (np.full(10, np.nan), ValueError, "accuracy: argument 'y' contains NaN"),
    (np.zeros((10, 3)), ValueError, "accuracy: targets 'y' have 3 columns but the model has 2 outputs"),
    (np.zeros((10, 1, 2)), ValueError, r"accuracy: the model's output has shape \(10, 2\), .* but the labels have shape \(10, 1, 2\)"),
])
def test_accuracy_refuses_labels_that_cannot_match_the_outputs(y_bad, error, match):
    x, _ = _separable(n=10)
    with pytest.raises(error, match=match):
        train.accuracy(_model(np.random.default_rng(0)), x, y_bad)


def test_accuracy_counts_float_and_bool_labels_and_one_hot_targets_alike():
    x, y = _separable(n=20)
    model = _model(np.random.default_rng(3))
    a = train.accuracy(model, x, y)
    assert a == train.accuracy(model, x, y.astype(np.float64)) == train.accuracy(model, x, np.eye(2)[y])
    assert a == train.accuracy(model, x, y.astype(bool))
    assert a == float(np.mean(train.predict_classes(model.forward(x)) == y))


def test_errors_inside_evaluate_name_the_function_the_user_called():
    x, y = _separable(n=10)
    with pytest.raises(ValueError, match="^accuracy: argument 'batch_size' must be at least 1"):
        train.accuracy(_model(np.random.default_rng(0)), x, y, batch_size=0)


# --- Learning-rate schedules and early stopping inside fit ---

def test_fit_steps_the_scheduler_once_per_epoch_and_records_the_rates():
    x, y = _separable(seed=10)
    rng = np.random.default_rng(0)
    opt = optim.SGD(lr=0.2, momentum=0.5)
    sched = optim.StepLR(opt, step_size=2, gamma=0.5)
    hist = train.fit(_model(rng), nn.SoftmaxCrossEntropy(), opt, x, y, epochs=5, batch_size=8, rng=rng, scheduler=sched)
    assert hist["lr"] == pytest.approx([0.2, 0.2, 0.1, 0.1, 0.05])
    assert sched.epoch == 5 and opt.lr == pytest.approx(0.05)  # the rate for a sixth epoch


def test_a_scheduled_fit_equals_a_hand_written_loop_that_sets_the_rate():
    x, y = _separable(seed=11)
    r1, r2 = np.random.default_rng(4), np.random.default_rng(4)
    m1, m2 = _model(r1), _model(r2)
    o1, o2 = optim.Adam(lr=0.05), optim.Adam(lr=0.05)
    train.fit(m1, nn.SoftmaxCrossEntropy(), o1, x, y, epochs=4, batch_size=8, rng=r1, scheduler=optim.CosineLR(o1, epochs=4))
    cos = optim.CosineLR(optim.Adam(lr=0.05), epochs=4)
    for epoch in range(4):
        o2.lr = cos.lr_at(epoch)
        train.fit(m2, nn.SoftmaxCrossEntropy(), o2, x, y, epochs=1, batch_size=8, rng=r2)
    for k in m1.params:
        np.testing.assert_array_equal(m1.params[k], m2.params[k])


def _noisy_problem():
    """Random labels: the validation loss falls for a while, then rises as the net memorises the training set."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((80, 2))
    y = (x[:, 0] + 0.8 * rng.standard_normal(80) > 0).astype(np.int64)
    return x[:40], y[:40], x[40:], y[40:]


def test_early_stopping_stops_after_patience_epochs_and_restores_the_best_parameters():
    x, y, xv, yv = _noisy_problem()

    def run(epochs, patience):
        rng = np.random.default_rng(5)
        model = nn.Sequential(nn.Linear(2, 32, rng), nn.Tanh(), nn.Linear(32, 2, rng))
        hist = train.fit(model, nn.SoftmaxCrossEntropy(), optim.Adam(lr=0.05), x, y, epochs=epochs, batch_size=8, rng=rng,
                         x_val=xv, y_val=yv, patience=patience)
        return model, hist

    model, hist = run(200, 5)
    best = hist["best_epoch"]
    assert best == 1 + int(np.argmin(hist["val_loss"]))
    assert len(hist["val_loss"]) == best + 5 < 200  # stopped five epochs after the best one
    assert min(hist["val_loss"][best:]) >= hist["val_loss"][best - 1]
    again, _ = run(best, None)  # the same training, stopped by hand at the best epoch
    for k in model.params:
        np.testing.assert_array_equal(model.params[k], again.params[k])
    assert train.evaluate(model, nn.SoftmaxCrossEntropy(), xv, yv)[0] == pytest.approx(hist["val_loss"][best - 1], rel=1e-12)


def test_early_stopping_that_never_triggers_still_restores_the_best_epoch():
    x, y = _separable(seed=12)
    rng = np.random.default_rng(2)
    model = _model(rng)
    hist = train.fit(model, nn.SoftmaxCrossEntropy(), optim.SGD(lr=0.3), x[:30], y[:30], epochs=6, batch_size=8, rng=rng,
                     x_val=x[30:], y_val=y[30:], patience=100)
    assert len(hist["loss"]) == 6 and hist["best_epoch"] == 1 + int(np.argmin(hist["val_loss"]))
    assert train.evaluate(model, nn.SoftmaxCrossEntropy(), x[30:], y[30:])[0] == pytest.approx(min(hist["val_loss"]), rel=1e-12)


@pytest.mark.parametrize("change, error, match", [
    (dict(patience=3), ValueError, "fit: argument 'patience' \\(early stopping\\) needs validation data"),
    (dict(patience=0, x_val=np.zeros((2, 2)), y_val=np.zeros(2, dtype=np.int64)), ValueError, "'patience' must be at least 1"),
    (dict(patience=2.0, x_val=np.zeros((2, 2)), y_val=np.zeros(2, dtype=np.int64)), TypeError, "'patience' must be an integer"),
    (dict(scheduler="cosine"), TypeError, "fit: argument 'scheduler' must be None or have a 'step' method"),
    (dict(y_val=np.zeros(2, dtype=np.int64)), ValueError, "'x_val' and 'y_val' must be given together"),
])
def test_fit_validates_scheduler_and_patience(change, error, match):
    args = _fit_args() | change
    with pytest.raises(error, match=match):
        train.fit(**args)


def test_fit_refuses_a_scheduler_for_an_optimizer_without_a_rate():
    class Plain:
        def step(self, params, grads):
            pass

    args = _fit_args() | dict(optimizer=Plain(), scheduler=optim.StepLR(optim.SGD(lr=0.1), step_size=1))
    with pytest.raises(TypeError, match="fit: a scheduler needs an optimizer with an 'lr' attribute, got Plain"):
        train.fit(**args)


# --- numerical_param_grads and seed_summary under hostile inputs ---

def test_numerical_param_grads_takes_any_iterable_of_keys_and_refuses_the_rest():
    rng = np.random.default_rng(0)
    model = nn.Sequential(nn.Linear(3, 2, rng))
    x, y = rng.normal(size=(4, 3)), rng.integers(0, 2, 4)
    from_list = train.numerical_param_grads(model, nn.SoftmaxCrossEntropy(), x, y, ["0.W", "0.b"])
    from_generator = train.numerical_param_grads(model, nn.SoftmaxCrossEntropy(), x, y, (k for k in ("0.W", "0.b")))
    assert from_generator.keys() == from_list.keys()  # a generator is read once, not used up by the check
    for k in from_list:
        np.testing.assert_array_equal(from_generator[k], from_list[k])
    with pytest.raises(TypeError, match="numerical_param_grads: argument 'keys' must be a list of names"):
        train.numerical_param_grads(model, nn.SoftmaxCrossEntropy(), x, y, None)
    with pytest.raises(TypeError, match="numerical_param_grads: argument 'loss_fn' must be a loss module"):
        train.numerical_param_grads(model, losses.softmax_cross_entropy, x, y, ["0.W"])
    model.modules[0].W = model.modules[0].W.astype(np.float32)
    with pytest.raises(TypeError, match=r"params\['0.W'\] has dtype float32; central differences need float64"):
        train.numerical_param_grads(model, nn.SoftmaxCrossEntropy(), x, y, ["0.W"])


def test_seed_summary_stays_finite_for_huge_values_and_format_checks_digits():
    s = train.seed_summary([1e308, 1.5e308, 1.7e308])
    assert np.isfinite([s.mean, s.std]).all()
    assert s.mean == pytest.approx(1.4e308) and s.std == pytest.approx(np.std([1.0, 1.5, 1.7], ddof=1) * 1e308)
    assert train.seed_summary([0.0, 0.0]).std == 0.0
    with pytest.raises(ValueError, match="SeedSummary.format: argument 'digits' must be at least 0"):
        s.format(-1)
    with pytest.raises(TypeError, match="SeedSummary.format: argument 'digits' must be an integer"):
        s.format(2.0)
    with pytest.raises(ValueError, match="must be at most 15"):
        s.format(400)


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")
def test_np_matrix_inputs_work_as_plain_arrays():
    x, y = _separable(n=10)
    model = _model(np.random.default_rng(0))
    expected = train.evaluate(model, nn.SoftmaxCrossEntropy(), x, y)
    assert train.evaluate(model, nn.SoftmaxCrossEntropy(), np.asmatrix(x), y) == pytest.approx(expected, rel=1e-12)
    z = model.forward(x)
    model.clear_cache()
    np.testing.assert_array_equal(train.predict_classes(np.asmatrix(z)), train.predict_classes(z))
