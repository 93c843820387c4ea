"""Tests of bplib.autodiff: the tape against the hand-written pairs, forward mode against reverse
mode and numerical derivatives, Hessian-vector products, dropout, the L2 penalty and bad input."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import linear_sizes, seeds

from bplib import activations, linear, losses, nn
from bplib.autodiff import (
    OPS,
    Dual,
    Tape,
    add_backward,
    add_forward,
    dropout_backward,
    dropout_forward,
    l2_penalty_backward,
    l2_penalty_forward,
)
from bplib.gradcheck import check_backward, numerical_derivative, numerical_gradient, rel_error

# ---------------------------------------------------------------- helpers


def _op_problem(name, rng):
    """Differentiable arguments and constants of each registered op, at a small random size."""
    x = rng.standard_normal((4, 3))
    return {
        "linear": ((x, rng.standard_normal((3, 2)), rng.standard_normal(2)), {}),
        "sigmoid": ((x,), {}),
        "tanh": ((x,), {}),
        "relu": ((x,), {}),
        "dropout": ((x,), {"p": 0.4, "rng": np.random.default_rng(3)}),
        "add": ((x, rng.standard_normal((4, 3))), {}),
        "l2_penalty": ((x,), {"lam": 0.7}),
        "half_squared_error": ((x,), {"t": rng.standard_normal((4, 3))}),
        "bce_with_logits": ((x,), {"t": rng.random((4, 3))}),
        "softmax_cross_entropy": ((x,), {"y": rng.integers(0, 3, 4)}),
    }[name]


def _fresh(kwargs):
    # dropout draws from its rng; a fresh copy of the same seed gives the same mask every time
    return {k: (np.random.default_rng(3) if isinstance(v, np.random.Generator) else v) for k, v in kwargs.items()}


def _dout_for(out, rng):
    return float(rng.standard_normal()) if np.ndim(out) == 0 else rng.standard_normal(np.shape(out))


def _mlp(rng, sizes=(5, 7, 6, 3)):
    return nn.Sequential(nn.Linear(sizes[0], sizes[1], rng), nn.Tanh(), nn.Linear(sizes[1], sizes[2], rng),
                         nn.Sigmoid(), nn.Linear(sizes[2], sizes[3], rng))


def _mlp_on_tape(params, x, y, acts=("tanh", "sigmoid")):
    tape = Tape()
    P = {k: tape.input(v, k) for k, v in params.items()}
    h = tape.input(x, "x")
    for i, act in enumerate(acts):
        h = tape.apply(act, tape.apply("linear", h, P[f"{2 * i}.W"], P[f"{2 * i}.b"]))
    z = tape.apply("linear", h, P[f"{2 * len(acts)}.W"], P[f"{2 * len(acts)}.b"])
    return tape, tape.apply("softmax_cross_entropy", z, y=y)


def _mixed_graph(values, T, y, lam=0.3):
    """Every op on one tape: a scalar loss of X, W and b that uses z three times."""
    tape = Tape()
    N = {k: tape.input(v, k) for k, v in values.items()}
    z = tape.apply("linear", N["X"], N["W"], N["b"])
    l1 = tape.apply("half_squared_error", tape.apply("sigmoid", z), t=T)
    th = tape.apply("dropout", tape.apply("tanh", z), p=0.3, rng=np.random.default_rng(5))
    l2 = tape.apply("bce_with_logits", th, t=(T > 0.5).astype(float))
    l3 = tape.apply("softmax_cross_entropy", tape.apply("relu", z), y=y)
    penalty = tape.apply("l2_penalty", N["W"], lam=lam)
    return tape, tape.apply("add", tape.apply("add", l1, l2), tape.apply("add", l3, penalty))


def _mixed_values(rng):
    values = {"X": rng.standard_normal((6, 3)), "W": rng.standard_normal((3, 4)), "b": rng.standard_normal(4)}
    return values, rng.random((6, 4)), rng.integers(0, 4, 6)


# ---------------------------------------------------------------- the tape replays the pairs


@pytest.mark.parametrize("name", sorted(OPS))
def test_tape_equals_the_hand_written_backward_of_each_op(name):
    rng = np.random.default_rng(0)
    args, kwargs = _op_problem(name, rng)
    tape = Tape()
    nodes = [tape.input(a, f"a{i}") for i, a in enumerate(args)]
    out = tape.apply(name, *nodes, **_fresh(kwargs))
    dout = _dout_for(out.value, rng)
    grads = tape.backward(out, dout)
    value, cache = OPS[name].forward(*args, **_fresh(kwargs))
    expected = OPS[name].backward(dout, cache)
    expected = expected if isinstance(expected, tuple) else (expected,)
    assert np.array_equal(out.value, value)
    for i, e in enumerate(expected):
        assert np.array_equal(grads[f"a{i}"], e)


@pytest.mark.parametrize("name", sorted(OPS))
def test_each_registered_pair_passes_a_gradient_check(name):
    args, kwargs = _op_problem(name, np.random.default_rng(1))

    def forward(*a):
        return OPS[name].forward(*a, **_fresh(kwargs))

    errors = check_backward(forward, OPS[name].backward, args, names=OPS[name].args, rng=np.random.default_rng(2))
    assert max(errors.values()) < 1e-6


@given(seeds())
def test_tape_reproduces_the_sequential_gradient_bit_for_bit(seed):
    rng = np.random.default_rng(seed)
    model, loss_fn = _mlp(rng), nn.SoftmaxCrossEntropy()
    x, y = rng.standard_normal((4, 5)), rng.integers(0, 3, 4)
    loss = loss_fn(model(x), y)
    model.zero_grad()
    dx = model.backward(loss_fn.backward(1.0))
    tape, out = _mlp_on_tape(model.params, x, y)
    grads = tape.backward(out)
    assert out.value == loss
    assert np.array_equal(grads["x"], dx)
    for k, g in model.grads.items():
        assert np.array_equal(grads[k], g), k


def test_a_node_used_twice_sums_its_gradients():
    rng = np.random.default_rng(4)
    x, W1, W2, b = rng.standard_normal((3, 4)), rng.standard_normal((4, 2)), rng.standard_normal((4, 2)), np.zeros(2)
    tape = Tape()
    xn, bn = tape.input(x, "x"), tape.input(b, "b")
    out = tape.apply("add", tape.apply("linear", xn, tape.input(W1), bn), tape.apply("linear", xn, tape.input(W2), bn))
    dout = rng.standard_normal((3, 2))
    grads = tape.backward(out, dout)
    assert np.allclose(grads["x"], dout @ W1.T + dout @ W2.T, rtol=0, atol=1e-14)
    assert np.allclose(grads["b"], 2 * dout.sum(axis=0), rtol=0, atol=1e-14)
    numeric = numerical_gradient(lambda v: np.sum((v @ W1 + v @ W2) * dout), x)
    assert rel_error(grads["x"], numeric) < 1e-7


def test_mixed_graph_gradient_matches_numerical_gradients():
    values, T, y = _mixed_values(np.random.default_rng(5))
    tape, out = _mixed_graph(values, T, y)
    grads = tape.backward(out)
    for k, v in values.items():
        numeric = numerical_gradient(lambda a, k=k: _mixed_graph({**values, k: a}, T, y)[1].value, v)
        assert rel_error(grads[k], numeric) < 1e-6, k


def test_wrt_returns_intermediate_adjoints_and_zeros_where_unreached():
    rng = np.random.default_rng(6)
    tape = Tape()
    x, unused = tape.input(rng.standard_normal((2, 3)), "x"), tape.input(rng.standard_normal(4), "unused")
    h = tape.apply("tanh", x)
    out = tape.apply("half_squared_error", h, t=np.zeros((2, 3)))
    dh, dunused = tape.backward(out, wrt=[h, unused])
    assert np.allclose(dh, h.value / 2, rtol=0, atol=1e-15)  # d/dh of sum(h^2) / (2 N), N = 2
    assert np.array_equal(dunused, np.zeros(4)) and np.array_equal(tape.backward(out)["unused"], np.zeros(4))


def test_backward_is_linear_in_dout_and_mutates_nothing():
    rng = np.random.default_rng(7)
    x, W, b = rng.standard_normal((3, 4)), rng.standard_normal((4, 2)), rng.standard_normal(2)
    copies = [a.copy() for a in (x, W, b)]
    tape = Tape()
    out = tape.apply("tanh", tape.apply("linear", tape.input(x, "x"), tape.input(W, "W"), tape.input(b, "b")))
    d1, d2 = rng.standard_normal((3, 2)), rng.standard_normal((3, 2))
    d1_copy = d1.copy()
    g1, g2, g12 = tape.backward(out, d1), tape.backward(out, d2), tape.backward(out, 2.0 * d1 - 3.0 * d2)
    for k in ("x", "W", "b"):
        assert np.allclose(g12[k], 2.0 * g1[k] - 3.0 * g2[k], rtol=1e-12, atol=1e-12)
    tape.hvp(tape.apply("half_squared_error", out, t=np.zeros((3, 2))), {"W": np.ones((4, 2))})
    assert all(np.array_equal(a, c) for a, c in zip((x, W, b), copies)) and np.array_equal(d1, d1_copy)


def test_passes_are_counted():
    values, T, y = _mixed_values(np.random.default_rng(8))
    tape, out = _mixed_graph(values, T, y)
    tape.backward(out)
    tape.jvp(out, {"W": np.ones((3, 4))})
    tape.hvp(out, {"W": np.ones((3, 4))})
    assert tape.passes == {"backward": 2, "jvp": 2}


# ---------------------------------------------------------------- forward mode against reverse mode


def _jacobians(tape, out, x):
    """The Jacobian of out in x built twice: column by column from JVPs, row by row from VJPs."""
    n, m = x.value.size, np.size(out.value)
    cols = [np.ravel(tape.jvp(out, {x.name: e.reshape(x.shape)})) for e in np.eye(n)]
    rows = [np.ravel(tape.backward(out, e.reshape(out.shape), wrt=[x])[0]) for e in np.eye(m)]
    return np.array(cols).T, np.array(rows)


@given(linear_sizes, seeds(), st.sampled_from(["tanh", "sigmoid", "relu"]))
def test_forward_mode_equals_reverse_mode_on_random_jacobians(sizes, seed, act):
    N, D, M = sizes
    rng = np.random.default_rng(seed)
    tape = Tape()
    x, W = tape.input(rng.standard_normal((N, D)), "x"), tape.input(rng.standard_normal((D, M)), "W")
    h = tape.apply(act, tape.apply("linear", x, W, tape.input(rng.standard_normal(M), "b")))
    out = tape.apply("linear", h, tape.input(rng.standard_normal((M, 2)), "W2"), tape.input(np.zeros(2), "b2"))
    for node in (x, W):
        J_forward, J_reverse = _jacobians(tape, out, node)
        assert J_forward.shape == (out.value.size, node.value.size)
        assert np.allclose(J_forward, J_reverse, rtol=1e-12, atol=1e-12)


def test_jvp_matches_a_central_difference_and_the_gradient():
    rng = np.random.default_rng(9)
    values, T, y = _mixed_values(rng)
    tape, out = _mixed_graph(values, T, y)
    v = {k: rng.standard_normal(a.shape) for k, a in values.items()}
    h = 1e-6
    plus = _mixed_graph({k: a + h * v[k] for k, a in values.items()}, T, y)[1].value
    minus = _mixed_graph({k: a - h * v[k] for k, a in values.items()}, T, y)[1].value
    grads = tape.backward(out)
    jvp = tape.jvp(out, v)
    assert abs(jvp - (plus - minus) / (2 * h)) < 1e-7
    assert math.isclose(jvp, sum(float(np.sum(grads[k] * v[k])) for k in v), rel_tol=1e-12, abs_tol=1e-14)


# ---------------------------------------------------------------- dual numbers


def _dual_cases():
    return {
        "exp": (lambda a: a.exp(), math.exp),
        "log": (lambda a: a.log(), math.log),
        "tanh": (lambda a: a.tanh(), math.tanh),
        "sigmoid": (lambda a: a.sigmoid(), lambda a: 1.0 / (1.0 + math.exp(-a))),
        "rational": (lambda a: (3.0 * a - 1.0) / (a * a + 2.0) + 1.0 / a, lambda a: (3 * a - 1) / (a * a + 2) + 1 / a),
        "reflected": (lambda a: 2.0 - a / 4.0 + 5.0 / (1.0 + a), lambda a: 2 - a / 4 + 5 / (1 + a)),
        "composite": (lambda a: (a * a.tanh() + a.sigmoid() * a.exp()).log(),
                      lambda a: math.log(a * math.tanh(a) + math.exp(a) / (1 + math.exp(-a)))),
    }


@pytest.mark.parametrize("case", sorted(_dual_cases()))
@given(st.floats(0.1, 3.0))
def test_dual_numbers_against_numerical_derivatives(case, a):
    f_dual, f_float = _dual_cases()[case]
    out = f_dual(Dual(a, 1.0))
    assert math.isclose(out.value, f_float(a), rel_tol=1e-12, abs_tol=1e-12)
    assert abs(out.tangent - numerical_derivative(f_float, a, h=1e-6)) <= 1e-6 * max(1.0, abs(out.tangent))


def test_dual_tangent_scales_and_constants_have_zero_tangent():
    out = (Dual(0.7, 2.5) * 3.0).tanh()
    assert math.isclose(out.tangent, 2.5 * 3.0 * (1 - math.tanh(2.1) ** 2), rel_tol=1e-14)
    assert (Dual(1.5) * 4.0 + 1.0).tangent == 0.0
    assert (-Dual(1.0, 2.0)).tangent == -2.0
    assert "tangent=2" in repr(Dual(1.0, 2.0))


def test_dual_bad_input():
    with pytest.raises(TypeError, match="'value'"):
        Dual("1.0")
    with pytest.raises(TypeError, match="'tangent'"):
        Dual(1.0, float("nan"))
    with pytest.raises(TypeError, match="'other'"):
        Dual(1.0) + "a"
    with pytest.raises(ValueError, match="positive"):
        Dual(-1.0).log()
    with pytest.raises(ZeroDivisionError, match="value is 0"):
        Dual(1.0) / Dual(0.0, 1.0)
    with pytest.raises(ValueError, match=r"Dual.exp: exp\(1000\) overflows a float"):
        Dual(1000.0).exp()


# ---------------------------------------------------------------- Hessian-vector products


def _grad_difference(build, values, v, h=1e-5):
    gp = (lambda t_o: t_o[0].backward(t_o[1]))(build({k: a + h * v[k] for k, a in values.items()}))
    gm = (lambda t_o: t_o[0].backward(t_o[1]))(build({k: a - h * v[k] for k, a in values.items()}))
    return {k: (gp[k] - gm[k]) / (2 * h) for k in values}


@given(seeds())
def test_hvp_equals_finite_differences_of_the_gradient(seed):
    rng = np.random.default_rng(seed)
    values, T, y = _mixed_values(rng)
    values = {k: 0.5 * a for k, a in values.items()}  # moderate pre-activations: smooth finite differences
    if np.min(np.abs(values["X"] @ values["W"] + values["b"])) < 1e-3:
        values["b"] = values["b"] + 0.01  # keep relu away from its kink, where the gradient jumps
    build = lambda vals: _mixed_graph(vals, T, y)  # noqa: E731
    tape, out = build(values)
    v = {k: rng.standard_normal(a.shape) for k, a in values.items()}
    hv, fd = tape.hvp(out, v), _grad_difference(build, values, v)
    for k in values:
        assert np.allclose(hv[k], fd[k], rtol=1e-5, atol=1e-7), k


def test_hvp_of_the_mlp_and_a_symmetric_hessian():
    rng = np.random.default_rng(10)
    model, x, y = _mlp(rng, (3, 4, 3, 2)), rng.standard_normal((5, 3)), rng.integers(0, 2, 5)
    params = {k: p.copy() for k, p in model.params.items()}
    tape, out = _mlp_on_tape(params, x, y)
    names = list(params)
    sizes = [params[k].size for k in names]

    def hvp_flat(u):
        parts = np.split(u, np.cumsum(sizes)[:-1])
        hv = tape.hvp(out, {k: p.reshape(params[k].shape) for k, p in zip(names, parts)})
        return np.concatenate([hv[k].ravel() for k in names])

    H = np.array([hvp_flat(e) for e in np.eye(sum(sizes))])
    assert np.allclose(H, H.T, rtol=1e-10, atol=1e-12)  # second derivatives commute
    v = {k: rng.standard_normal(p.shape) for k, p in params.items()}
    fd = _grad_difference(lambda vals: _mlp_on_tape(vals, x, y), params, v)
    hv = tape.hvp(out, v)
    assert all(np.allclose(hv[k], fd[k], rtol=1e-5, atol=1e-8) for k in names)


def test_hvp_of_a_quadratic_is_exact():
    # L = 0.5 |X w - t|^2 / N + (lam / 2) |w|^2 has H = X^T X / N + lam I, so Hv needs no approximation
    rng = np.random.default_rng(11)
    X, t, w, v = rng.standard_normal((7, 3)), rng.standard_normal((7, 1)), rng.standard_normal((3, 1)), rng.standard_normal((3, 1))
    tape = Tape()
    wn = tape.input(w, "w")
    fit = tape.apply("half_squared_error", tape.apply("linear", tape.input(X, "X"), wn, tape.input(np.zeros(1), "b")), t=t)
    out = tape.apply("add", fit, tape.apply("l2_penalty", wn, lam=0.5))
    assert np.allclose(tape.hvp(out, {"w": v})["w"], X.T @ X @ v / 7 + 0.5 * v, rtol=1e-13, atol=1e-14)


# ---------------------------------------------------------------- dropout


def test_dropout_mask_is_applied_consistently():
    rng = np.random.default_rng(12)
    x = rng.uniform(0.5, 1.5, (50, 40))  # no zeros in x: a zero in out means a dropped entry
    out, cache = dropout_forward(x, 0.3, np.random.default_rng(0))
    scale = cache.scale
    dx = dropout_backward(np.ones_like(x), cache)
    dropped = out == 0
    assert np.array_equal(dropped, dx == 0) and np.array_equal(dropped, scale == 0)
    assert np.allclose(out[~dropped], x[~dropped] / 0.7, rtol=1e-15) and np.allclose(dx[~dropped], 1 / 0.7, rtol=1e-15)
    # 2000 entries each dropped with probability 0.3: the count has std sqrt(2000 0.3 0.7) ~ 20.5; allow 5 std
    assert abs(dropped.sum() - 600) < 103


def test_inverted_dropout_keeps_the_expectation():
    # Each entry of out is 0 or x / (1 - p): mean x, variance x^2 p / (1 - p) = 1 here (x = 1, p = 0.5).
    # The mean of n = 200_000 entries has standard deviation 1 / sqrt(n) ~ 0.0022; 5 standard deviations is 0.011.
    out, _ = dropout_forward(np.ones(200_000), 0.5, np.random.default_rng(13))
    assert abs(out.mean() - 1.0) < 0.011


def test_dropout_same_seed_same_mask_and_eval_is_identity():
    x = np.random.default_rng(14).standard_normal((6, 5))
    a, _ = dropout_forward(x, 0.5, np.random.default_rng(1))
    b, _ = dropout_forward(x, 0.5, np.random.default_rng(1))
    assert np.array_equal(a, b)
    out, cache = dropout_forward(x, 0.9, np.random.default_rng(1), training=False)
    assert np.array_equal(out, x) and np.array_equal(dropout_backward(x, cache), x)
    assert not np.shares_memory(out, x)  # writing into out must not change x
    out0, _ = dropout_forward(x, 0.0, np.random.default_rng(1))
    assert np.array_equal(out0, x)
    assert dropout_forward(x.astype(np.float32), 0.5, np.random.default_rng(1))[0].dtype == np.float32


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"p": 1.0}, ValueError, "'p'"),
    ({"p": -0.1}, ValueError, "'p'"),
    ({"p": "half"}, TypeError, "'p'"),
    ({"rng": 0}, TypeError, "'rng'"),
    ({"training": 1}, TypeError, "'training'"),
    ({"x": "abc"}, TypeError, "'x'"),
])
def test_dropout_forward_validates_its_arguments(kwargs, error, match):
    args = {"x": np.ones((2, 2)), "p": 0.5, "rng": np.random.default_rng(0), "training": True, **kwargs}
    with pytest.raises(error, match=match):
        dropout_forward(**args)


def test_dropout_backward_validates_its_arguments():
    _, cache = dropout_forward(np.ones((2, 3)), 0.5, np.random.default_rng(0))
    with pytest.raises(ValueError, match="'dout'"):
        dropout_backward(np.ones((3, 2)), cache)
    with pytest.raises(TypeError, match="'cache'"):
        dropout_backward(np.ones((2, 3)), ())


# ---------------------------------------------------------------- the L2 penalty and add


def test_l2_penalty_value_and_gradient():
    W = np.array([[1.0, -2.0], [3.0, 0.5]])
    R, cache = l2_penalty_forward(W, 0.2)
    assert math.isclose(R, 0.1 * (1 + 4 + 9 + 0.25), rel_tol=1e-15)
    assert np.allclose(l2_penalty_backward(2.0, cache), 2.0 * 0.2 * W, rtol=1e-15)
    assert l2_penalty_forward(W, 0.0)[0] == 0.0


def test_l2_penalty_validates_its_arguments():
    with pytest.raises(ValueError, match="'lam'"):
        l2_penalty_forward(np.ones(3), -1.0)
    with pytest.raises(TypeError, match="'W'"):
        l2_penalty_forward("W", 1.0)
    _, cache = l2_penalty_forward(np.ones(3), 1.0)
    with pytest.raises(TypeError, match="'dR'"):
        l2_penalty_backward(np.ones(3), cache)
    with pytest.raises(TypeError, match="'cache'"):
        l2_penalty_backward(1.0, (np.ones(3),))


def test_add_of_scalars_is_a_float_and_shapes_must_match():
    out, cache = add_forward(1.5, 2.0)
    assert out == 3.5 and isinstance(out, float) and add_backward(2.0, cache) == (2.0, 2.0)
    with pytest.raises(ValueError, match="'a'.*'b'"):
        add_forward(np.ones(3), np.ones(4))
    _, cache = add_forward(np.ones(3), np.ones(3))
    with pytest.raises(ValueError, match="'dout'"):
        add_backward(np.ones(4), cache)


# ---------------------------------------------------------------- bad input to the tape


def _small_tape():
    tape = Tape()
    x = tape.input(np.ones((2, 3)), "x")
    return tape, x, tape.apply("tanh", x)


def test_apply_rejects_unknown_ops_and_wrong_nodes():
    tape, x, h = _small_tape()
    with pytest.raises(ValueError, match="unknown op 'softplus'"):
        tape.apply("softplus", x)
    with pytest.raises(TypeError, match="takes 3 Nodes"):
        tape.apply("linear", x, x)
    with pytest.raises(TypeError, match="'x' must be a Node"):
        tape.apply("tanh", np.ones(3))
    with pytest.raises(ValueError, match="'x' is a Node of another tape"):
        tape.apply("tanh", Tape().input(np.ones(3)))
    with pytest.raises(TypeError, match="'t' is a constant"):
        tape.apply("half_squared_error", h, t=x)


def test_apply_passes_the_ops_shape_errors_through():
    tape, x, _ = _small_tape()
    with pytest.raises(ValueError, match="linear_forward: argument 'x' has shape .* but 'W'"):
        tape.apply("linear", x, tape.input(np.ones((4, 2))), tape.input(np.ones(2)))
    with pytest.raises(ValueError, match="softmax_cross_entropy_forward: argument 'y'"):
        tape.apply("softmax_cross_entropy", x, y=np.zeros(3, dtype=int))


def test_input_validates_value_and_name():
    tape = Tape()
    tape.input(np.ones(2), "w")
    with pytest.raises(ValueError, match="'name' is already used"):
        tape.input(np.ones(2), "w")
    with pytest.raises(TypeError, match="'name' must be a string"):
        tape.input(np.ones(2), 3)
    with pytest.raises(TypeError, match="'value'"):
        tape.input("abc")
    with pytest.raises(ValueError, match="'value' contains NaN"):
        tape.input(np.array([np.nan]))


def test_backward_validates_out_dout_and_wrt():
    tape, x, h = _small_tape()
    loss = tape.apply("half_squared_error", h, t=np.zeros((2, 3)))
    with pytest.raises(ValueError, match="'dout' is needed"):
        tape.backward(h)
    with pytest.raises(ValueError, match="'dout' must have shape"):
        tape.backward(h, np.ones(3))
    with pytest.raises(TypeError, match="'dout'"):
        tape.backward(loss, np.ones(1))
    with pytest.raises(TypeError, match="'out' must be a Node"):
        tape.backward(1.0)
    with pytest.raises(TypeError, match=r"'wrt\[1\]'"):
        tape.backward(loss, wrt=[x, "h"])
    with pytest.raises(ValueError, match="'out' is a Node of another tape"):
        Tape().backward(loss)


def test_jvp_and_hvp_validate_their_arguments():
    tape, x, h = _small_tape()
    loss = tape.apply("half_squared_error", h, t=np.zeros((2, 3)))
    with pytest.raises(TypeError, match="'tangents' must be a dict"):
        tape.jvp(h, np.ones((2, 3)))
    with pytest.raises(ValueError, match="names no input"):
        tape.jvp(h, {"y": np.ones((2, 3))})
    with pytest.raises(ValueError, match=r"tangents\['x'\]"):
        tape.jvp(h, {"x": np.ones(3)})
    with pytest.raises(ValueError, match="'dout' is needed"):
        tape.hvp(h, {"x": np.ones((2, 3))})
    with pytest.raises(TypeError, match="'out'"):
        tape.hvp("loss", {})
    assert np.array_equal(tape.jvp(h, {}), np.zeros((2, 3)))  # no tangent given: every input still
    assert repr(x).startswith("Node(x") and repr(loss).startswith("Node(half_squared_error")


def test_extreme_inputs_stay_finite():
    tape = Tape()
    z = tape.input(np.array([[1e4, -1e4, 0.0]]), "z")
    loss = tape.apply("add", tape.apply("softmax_cross_entropy", z, y=np.array([1])),
                      tape.apply("bce_with_logits", tape.apply("sigmoid", z), t=np.ones((1, 3))))
    g, hv = tape.backward(loss)["z"], tape.hvp(loss, {"z": np.ones((1, 3))})["z"]
    assert np.isfinite(loss.value) and np.all(np.isfinite(g)) and np.all(np.isfinite(hv))
    assert np.isfinite(Dual(-1000.0, 1.0).sigmoid().tangent)


def test_library_pairs_are_the_registered_ones():
    # the table must point at the pairs the earlier chapters derived, not at copies
    assert OPS["linear"].backward is linear.linear_backward and OPS["relu"].forward is activations.relu_forward
    assert OPS["softmax_cross_entropy"].backward is losses.softmax_cross_entropy_backward
