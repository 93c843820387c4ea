"""Tests of bplib.autodiff: the tape against the hand-written pairs, forward mode against reverse
mode and numerical derivatives, Hessian-vector products in both orders, Gauss-Newton products,
conjugate gradients, checkpointing, dropout, the L2 penalty, and bad or extreme input."""

import gc
import inspect
import math
import tracemalloc
import weakref

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
    checkpointed_gradient,
    conjugate_gradient,
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
    other = Tape()
    with pytest.raises(ValueError, match="'x' is a Node of another tape"):
        tape.apply("tanh", other.input(np.ones(3)))
    with pytest.raises(ValueError, match="'x' is a Node of another tape"):
        tape.apply("tanh", Tape().input(np.ones(3)))  # a tape freed at once: a new tape cannot take its place
    with pytest.raises(TypeError, match="'t' is a constant"):
        tape.apply("half_squared_error", h, t=x)


def test_apply_passes_the_ops_shape_errors_through():
    tape, x, _ = _small_tape()
    with pytest.raises(ValueError, match=r"Tape.apply\('linear'\): linear_forward: argument 'x' has shape .* but 'W'"):
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


# ---------------------------------------------------------------- issue 13: no silent wrong result, clear errors


def test_add_backward_returns_new_arrays_not_dout():
    dout = np.arange(6.0).reshape(2, 3)
    da, db = add_backward(dout, add_forward(np.ones((2, 3)), np.ones((2, 3)))[1])
    assert da is not dout and db is not dout and da is not db
    assert not np.shares_memory(da, dout) and not np.shares_memory(db, dout) and not np.shares_memory(da, db)
    da += 1.0  # the caller may update one gradient in place ...
    assert np.array_equal(db, np.arange(6.0).reshape(2, 3)) and np.array_equal(dout, db)  # ... without touching the others


def test_l2_penalty_stays_finite_whenever_the_penalty_is():
    R, _ = l2_penalty_forward([1.5e154], 1.0)  # the square 2.25e308 overflows float64; R = 1.125e308 does not
    assert math.isclose(R, 0.5 * 1.5e154 * 1.5e154, rel_tol=1e-14)
    R32, _ = l2_penalty_forward(np.full(4, 3e38, np.float32), 0.5)  # float32 squares overflow; R is a float64
    assert math.isclose(R32, 0.25 * 4 * float(np.float32(3e38)) ** 2, rel_tol=1e-6)
    with pytest.raises(ValueError, match="l2_penalty_forward: the penalty .* overflows float64"):
        l2_penalty_forward([1e200], 1.0)  # R = 5e399 itself is beyond float64
    _, cache = l2_penalty_forward(np.full(3, 3e38, np.float32), 1.0)
    with pytest.raises(ValueError, match=r"l2_penalty_backward: dR \* lam \* W overflows float32"):
        l2_penalty_backward(10.0, cache)
    assert l2_penalty_forward(np.zeros((0, 3)), 2.0)[0] == 0.0


def test_dual_division_by_a_tiny_value_is_finite():
    q = Dual(1.0) / Dual(1e-170)  # (a'b - ab')/b^2 would divide by b^2 = 0 (underflow)
    assert q.value == 1.0 / 1e-170 and q.tangent == 0.0
    q = Dual(1.0, 1.0) / Dual(1e-170)
    assert math.isclose(q.tangent, 1e170, rel_tol=1e-15)
    with pytest.raises(ValueError, match=r"Dual.__truediv__: the result overflows a float"):
        Dual(1.0) / Dual(1e-170, 1.0)  # the true tangent -1e340 is beyond float64


@given(st.floats(-50, 50), st.floats(-5, 5), st.floats(0.01, 50) | st.floats(-50, -0.01), st.floats(-5, 5))
def test_dual_division_matches_the_quotient_rule(a, da, b, db):
    q = Dual(a, da) / Dual(b, db)
    assert math.isclose(q.value, a / b, rel_tol=1e-15)
    assert math.isclose(q.tangent, (da * b - a * db) / b**2, rel_tol=1e-9, abs_tol=1e-12)


@pytest.mark.parametrize("make", [lambda: Dual(1e200) * Dual(1e200), lambda: Dual(700.0, 1e300).exp(),
                                  lambda: Dual(1e-320, 1.0).log(), lambda: Dual(1e308) + Dual(1e308)])
def test_dual_overflow_is_an_error_not_an_inf(make):
    with pytest.raises(ValueError, match="overflows a float"):
        make()


def test_dual_accepts_numpy_scalars_and_refuses_bools():
    assert (Dual(np.float32(2.0), np.array(1.0)) * np.float64(3.0)).tangent == 3.0
    assert (Dual(1.0) + np.array(2.0)).value == 3.0
    for bad in (True, np.True_):
        with pytest.raises(TypeError, match="'value'"):
            Dual(bad)
        with pytest.raises(TypeError, match="'other'"):
            Dual(1.0) * bad


def test_backward_wrt_one_node_returns_its_gradient():
    tape, x, h = _small_tape()
    loss = tape.apply("half_squared_error", h, t=np.zeros((2, 3)))
    dh = tape.backward(loss, wrt=h)
    assert isinstance(dh, np.ndarray) and np.array_equal(dh, tape.backward(loss, wrt=[h])[0])
    assert np.array_equal(tape.backward(loss, wrt=(x, h))[1], dh)
    for bad, error in (("h", TypeError), (np.ones(3), TypeError), ({x}, TypeError), (Tape().input(1.0), ValueError)):
        with pytest.raises(error, match="Tape.backward: argument 'wrt"):
            tape.backward(loss, wrt=bad)


def test_dropout_accepts_numpy_bools():
    x = np.arange(1.0, 7.0).reshape(2, 3)
    a, _ = dropout_forward(x, 0.5, np.random.default_rng(1), training=np.True_)
    b, _ = dropout_forward(x, 0.5, np.random.default_rng(1), training=True)
    assert np.array_equal(a, b)
    assert np.array_equal(dropout_forward(x, 0.5, np.random.default_rng(1), training=np.False_)[0], x)
    with pytest.raises(TypeError, match=r"dropout_forward: argument 'training' must be True or False, got 1 of type int"):
        dropout_forward(x, 0.5, np.random.default_rng(1), training=1)


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")
def test_np_matrix_is_read_as_a_plain_array():
    # np.matrix turns * into a matrix product, a silent wrong value: every entry point reads it as an ndarray
    a = np.arange(1.0, 7.0).reshape(2, 3)
    m = np.matrix(a)
    out, cache = dropout_forward(m, 0.5, np.random.default_rng(0))
    assert type(out) is np.ndarray and np.array_equal(out, dropout_forward(a, 0.5, np.random.default_rng(0))[0])
    assert type(dropout_backward(np.matrix(np.ones((2, 3))), cache)) is np.ndarray
    assert l2_penalty_forward(m, 1.0)[0] == l2_penalty_forward(a, 1.0)[0] == 0.5 * float(np.sum(a * a))
    assert type(add_forward(m, a)[0]) is np.ndarray
    tape, x, h = _small_tape()
    assert type(Tape().input(m).value) is np.ndarray
    assert np.array_equal(tape.jvp(h, {"x": np.matrix(np.ones((2, 3)))}), tape.jvp(h, {"x": np.ones((2, 3))}))


def test_overflow_in_a_sweep_is_an_error_not_an_inf():
    with pytest.raises(ValueError, match=r"dropout_forward: x / \(1 - p\) overflows"):
        dropout_forward(np.full(4, 1e308), 0.5, np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"add_forward: a \+ b overflows"):
        add_forward(1e308, 1e308)
    tape = Tape()
    x = tape.input(np.full((2, 3), 1e200), "x")
    with pytest.raises(ValueError, match=r"Tape.apply\('half_squared_error'\): the output overflows"):
        tape.apply("half_squared_error", x, t=np.zeros((2, 3)))
    tape = Tape()
    x, W = tape.input(np.ones((2, 3)), "x"), tape.input(np.full((3, 4), 1e200), "W")
    y = tape.apply("linear", x, W, tape.input(np.zeros(4), "b"))  # 3e200: finite
    with pytest.raises(ValueError, match="Tape.backward: the result for 'x' overflows float64"):
        tape.backward(y, np.full((2, 4), 1e200))  # dx = dy W^T = 4e400
    with pytest.raises(ValueError, match="Tape.jvp: the tangent of out overflows"):
        tape.jvp(y, {"x": np.full((2, 3), 1e200)})
    with pytest.raises(ValueError, match="Tape.hvp: the result for 'x' overflows"):
        tape.hvp(y, {"W": np.full((3, 4), 1e200)}, dout=np.full((2, 4), 1e200))  # dy tW^T


def test_bad_op_and_mode_arguments_are_named():
    tape, x, h = _small_tape()
    loss = tape.apply("half_squared_error", h, t=np.zeros((2, 3)))
    with pytest.raises(TypeError, match="Tape.apply: argument 'op' must be the name of a registered op, got ndarray"):
        tape.apply(np.ones(2), x)
    with pytest.raises(TypeError, match="Tape.hvp: argument 'mode' must be a string"):
        tape.hvp(loss, {}, mode=np.ones(2))
    with pytest.raises(ValueError, match="Tape.hvp: argument 'mode' must be 'forward-over-reverse' or"):
        tape.hvp(loss, {}, mode="reverse")
    assert tape.backward(loss, np.array(2.0))["x"].shape == (2, 3)  # a 0-d array is a number


# ---------------------------------------------------------------- the core loop and the second-order sweep


def test_the_core_reverse_loop_is_first_order_and_short():
    # Issue 16: the chapter shows this loop; the tangent logic lives in Tape._second_order
    source = inspect.getsource(Tape._reverse)
    assert "curvature" not in source and "tangent" not in source.split('"""')[-1]
    assert len(source.splitlines()) <= 20


def test_records_list_the_tape_in_topological_order():
    values, T, y = _mixed_values(np.random.default_rng(20))
    tape, out = _mixed_graph(values, T, y)
    listing = tape.records()
    assert len(listing) == len(tape.nodes) and listing[out.index][0] == "add"
    assert all(op is None and parents == () for (op, parents), node in zip(listing, tape.nodes) if node.name)
    assert all(p < i for i, (_, parents) in enumerate(listing) for p in parents)


def test_a_dropped_tape_is_freed_without_the_garbage_collector():
    gc.disable()
    try:
        tape = Tape()
        x = tape.input(np.ones((3, 3)), "x")
        tape.backward(tape.apply("half_squared_error", tape.apply("tanh", x), t=np.zeros((3, 3))))
        ref = weakref.ref(tape)
        del tape
        assert ref() is None  # nodes name their tape by number: no reference cycle keeps the caches alive
        assert repr(x).startswith("Node(x") and Tape()._id != x.tape_id
    finally:
        gc.enable()


def test_jvp_of_missing_tangents_is_zero_and_costs_nothing():
    values, T, y = _mixed_values(np.random.default_rng(21))
    tape, out = _mixed_graph(values, T, y)
    passes = dict(tape.passes)
    assert tape.jvp(out, {}) == 0.0
    v = np.random.default_rng(22).standard_normal((3, 4))
    only_W = tape.jvp(out, {"W": v})
    all_given = tape.jvp(out, {"W": v, "X": np.zeros((6, 3)), "b": np.zeros(4)})
    assert math.isclose(only_W, all_given, rel_tol=1e-13) and tape.passes["jvp"] == passes["jvp"] + 3


@given(seeds())
def test_reverse_over_reverse_equals_forward_over_reverse(seed):
    rng = np.random.default_rng(seed)
    values, T, y = _mixed_values(rng)
    tape, out = _mixed_graph(values, T, y)
    v = {k: rng.standard_normal(a.shape) for k, a in values.items()}
    fr, rr = tape.hvp(out, v), tape.hvp(out, v, mode="reverse-over-reverse")
    for k in values:
        assert np.allclose(fr[k], rr[k], rtol=1e-10, atol=1e-12), k


def test_hvp_with_dout_is_the_hessian_of_the_weighted_output():
    # For a non-scalar out, hvp(out, v, dout) is d/dr J(theta + r v)^T dout: a difference of backward passes
    rng = np.random.default_rng(23)
    values = {"X": rng.standard_normal((4, 3)), "W": rng.standard_normal((3, 2)), "b": rng.standard_normal(2)}
    dout, v = rng.standard_normal((4, 2)), {k: rng.standard_normal(a.shape) for k, a in values.items()}

    def build(vals):
        tape = Tape()
        n = {k: tape.input(a, k) for k, a in vals.items()}
        return tape, tape.apply("sigmoid", tape.apply("tanh", tape.apply("linear", n["X"], n["W"], n["b"])))

    tape, out = build(values)
    h = 1e-5
    plus, minus = (build({k: a + s * h * v[k] for k, a in values.items()}) for s in (1, -1))
    for mode in ("forward-over-reverse", "reverse-over-reverse"):
        hv = tape.hvp(out, v, dout=dout, mode=mode)
        for k in values:
            fd = (plus[0].backward(plus[1], dout)[k] - minus[0].backward(minus[1], dout)[k]) / (2 * h)
            assert np.allclose(hv[k], fd, rtol=1e-6, atol=1e-8), (mode, k)


def test_backward_graph_records_a_differentiable_gradient():
    values, T, y = _mixed_values(np.random.default_rng(24))
    tape, out = _mixed_graph(values, T, y)
    graph, grads = tape.backward_graph(out)
    first = tape.backward(out)
    assert all(np.allclose(grads[k].value, first[k], rtol=1e-14, atol=1e-15) for k in values)
    assert len(graph.nodes) > len(tape.nodes) and graph.records()[: len(tape.nodes)] == tape.records()
    with pytest.raises(ValueError, match="has no forward-mode rule"):
        graph.jvp(grads["W"], {"W": np.ones((3, 4))})


def _flat_hessians(tape, out, params):
    names, shapes = list(params), [params[k].shape for k in params]
    cuts = np.cumsum([params[k].size for k in names])[:-1]

    def matrix(product):
        cols = []
        for e in np.eye(sum(params[k].size for k in names)):
            d = product(out, {k: p.reshape(s) for k, p, s in zip(names, np.split(e, cuts), shapes)})
            cols.append(np.concatenate([d[k].ravel() for k in names]))
        return np.array(cols).T

    return matrix(tape.hvp), matrix(tape.gvp)


def test_gauss_newton_is_J_transpose_loss_hessian_J_and_semi_definite():
    rng = np.random.default_rng(25)
    x, y = rng.standard_normal((6, 4)), rng.integers(0, 3, 6)
    params = {"W1": rng.standard_normal((4, 5)), "b1": rng.standard_normal(5),
              "W2": rng.standard_normal((5, 3)), "b2": rng.standard_normal(3)}
    tape, out, P = _mlp_tape2(params, x, y)
    H, G = _flat_hessians(tape, out, params)

    def logits(u):  # the network as a plain function of the flat parameters, without the tape
        p, i = {}, 0
        for k, a in params.items():
            p[k], i = u[i:i + a.size].reshape(a.shape), i + a.size
        return np.tanh(x @ p["W1"] + p["b1"]) @ p["W2"] + p["b2"]

    theta = np.concatenate([a.ravel() for a in params.values()])
    J = np.array([(logits(theta + 1e-6 * e) - logits(theta - 1e-6 * e)).ravel() / 2e-6 for e in np.eye(theta.size)]).T
    z = logits(theta)
    s = np.exp(z - z.max(axis=1, keepdims=True))
    s /= s.sum(axis=1, keepdims=True)
    H_loss = np.zeros((z.size, z.size))
    for n in range(6):
        H_loss[3 * n:3 * n + 3, 3 * n:3 * n + 3] = (np.diag(s[n]) - np.outer(s[n], s[n])) / 6
    assert np.allclose(G, J.T @ H_loss @ J, rtol=1e-6, atol=1e-9)
    assert np.allclose(G, G.T, rtol=0, atol=1e-14) and np.allclose(H, H.T, rtol=0, atol=1e-13)
    eig_G, eig_H = np.linalg.eigvalsh(G), np.linalg.eigvalsh(H)
    assert eig_G.min() > -1e-12 * eig_G.max()  # positive semi-definite
    assert eig_H.min() < -1e-6  # the Hessian of this network is not


def _mlp_tape2(params, x, y, lam=None):
    tape = Tape()
    P = {k: tape.input(v, k) for k, v in params.items()}
    h = tape.apply("tanh", tape.apply("linear", tape.input(x, "x"), P["W1"], P["b1"]))
    out = tape.apply("softmax_cross_entropy", tape.apply("linear", h, P["W2"], P["b2"]), y=y)
    if lam is not None:
        out = tape.apply("add", out, tape.apply("l2_penalty", P["W1"], lam=lam))
    return tape, out, P


@given(seeds())
def test_curvature_products_are_symmetric(seed):
    # u^T H v = v^T H u and u^T G v = v^T G u: second derivatives commute, and G = J^T H_loss J
    rng = np.random.default_rng(seed)
    values, T, y = _mixed_values(rng)
    tape, out = _mixed_graph(values, T, y)
    u, v = ({k: rng.standard_normal(a.shape) for k, a in values.items()} for _ in range(2))
    tape_g, out_g, _ = _mlp_tape2({"W1": values["W"], "b1": values["b"], "W2": rng.standard_normal((4, 3)),
                                   "b2": np.zeros(3)}, values["X"], y % 3, lam=0.2)
    ug = {"W1": u["W"], "b1": u["b"]}
    vg = {"W1": v["W"], "b1": v["b"]}
    for product, o, uu, vv in ((tape.hvp, out, u, v), (tape_g.gvp, out_g, ug, vg)):
        uMv = sum(np.sum(uu[k] * m) for k, m in product(o, vv).items() if k in uu)
        vMu = sum(np.sum(vv[k] * m) for k, m in product(o, uu).items() if k in vv)
        assert math.isclose(uMv, vMu, rel_tol=1e-10, abs_tol=1e-12)


def test_gauss_newton_equals_the_hessian_for_a_linear_model_and_adds_the_penalty():
    rng = np.random.default_rng(26)
    X, t, w, v = rng.standard_normal((7, 3)), rng.standard_normal((7, 1)), rng.standard_normal((3, 1)), rng.standard_normal((3, 1))
    tape = Tape()
    wn = tape.input(w, "w")
    fit = tape.apply("half_squared_error", tape.apply("linear", tape.input(X, "X"), wn, tape.input(np.zeros(1), "b")), t=t)
    out = tape.apply("add", fit, tape.apply("l2_penalty", wn, lam=0.5))
    gv, hv = tape.gvp(out, {"w": v})["w"], tape.hvp(out, {"w": v})["w"]
    assert np.allclose(gv, hv, rtol=1e-14, atol=1e-15) and np.allclose(gv, X.T @ X @ v / 7 + 0.5 * v, rtol=1e-13)


def test_gvp_needs_a_sum_of_losses():
    tape, x, h = _small_tape()
    loss = tape.apply("half_squared_error", h, t=np.zeros((2, 3)))
    with pytest.raises(ValueError, match="Tape.gvp: 'out' must be a loss or a sum of losses made with 'add'; op 'tanh'"):
        tape.gvp(tape.apply("tanh", loss), {"x": np.ones((2, 3))})
    with pytest.raises(ValueError, match="'dout' is needed"):
        tape.gvp(h, {})
    assert np.all(tape.gvp(loss, {"x": np.ones((2, 3))})["x"] >= 0.0)  # here G = diag((1 - h^2)^2) / N


# ---------------------------------------------------------------- conjugate gradients


def _spd(rng, n, cond=50.0):
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    return Q @ np.diag(np.geomspace(1.0, cond, n)) @ Q.T


@given(seeds(), st.integers(1, 12))
def test_conjugate_gradient_solves_a_positive_definite_system(seed, n):
    rng = np.random.default_rng(seed)
    A, b = _spd(rng, n), rng.standard_normal(n)
    res = conjugate_gradient(lambda p: A @ p, b, max_iter=3 * n, tol=1e-12)
    assert np.allclose(res.x, np.linalg.solve(A, b), rtol=1e-8, atol=1e-10)
    assert res.residual <= 1e-12 and np.linalg.norm(b - A @ res.x) <= 1e-9 * np.linalg.norm(b)
    assert res.iterations <= n + 4  # n in exact arithmetic, a few more for rounding


def test_conjugate_gradient_truncates_warm_starts_and_refuses_negative_curvature():
    rng = np.random.default_rng(27)
    A, b = _spd(rng, 20, cond=1e4), rng.standard_normal(20)
    truncated = conjugate_gradient(lambda p: A @ p, b, max_iter=3)
    assert truncated.iterations == 3 and truncated.residual > 1e-3
    exact = np.linalg.solve(A, b)
    warm = conjugate_gradient(lambda p: A @ p, b, x0=exact, max_iter=5)
    assert warm.iterations == 0 and np.array_equal(warm.x, exact)
    zero = conjugate_gradient(lambda p: A @ p, np.zeros(20))
    assert zero.iterations == 0 and not np.any(zero.x) and zero.residual == 0.0
    with pytest.raises(ValueError, match=r"conjugate_gradient: A is not positive definite: p\^T A p = .* at iteration 1"):
        conjugate_gradient(lambda p: -p, b)


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"matvec": "A"}, TypeError, "'matvec' must be a function"),
    ({"b": np.ones((2, 2))}, ValueError, "'b' must have 1 dimensions"),
    ({"b": np.array([1.0, np.nan])}, ValueError, "'b' contains NaN"),
    ({"x0": np.ones(3)}, ValueError, "'x0' has shape"),
    ({"max_iter": -1}, ValueError, "'max_iter' must be at least 0"),
    ({"max_iter": True}, TypeError, "'max_iter' must be an integer"),
    ({"tol": -1.0}, ValueError, "'tol' must lie in"),
    ({"matvec": lambda p: p[:1]}, ValueError, r"'matvec\(v\)' has shape \(1,\)"),
    ({"matvec": lambda p: p * np.nan}, ValueError, r"'matvec\(v\)' contains NaN"),
])
def test_conjugate_gradient_validates_its_arguments(kwargs, error, match):
    args = {"matvec": lambda p: 2.0 * p, "b": np.ones(2), **kwargs}
    with pytest.raises(error, match="conjugate_gradient: argument " + match):
        conjugate_gradient(args.pop("matvec"), args.pop("b"), **args)


# ---------------------------------------------------------------- checkpointing


def _deep_problem(rng, depth, width=4, n=5):
    params = [{"W": rng.standard_normal((width, width)) / np.sqrt(width), "b": rng.standard_normal(width)} for _ in range(depth)]
    return params, rng.standard_normal((n, width)), rng.standard_normal((n, width))


def _tanh_layer(tape, h, P):
    return tape.apply("tanh", tape.apply("linear", h, P["W"], P["b"]))


def _one_tape(params, x, t):
    tape = Tape()
    h = tape.input(x, "h")
    Ps = [{k: tape.input(v, f"{i}.{k}") for k, v in P.items()} for i, P in enumerate(params)]
    for P in Ps:
        h = _tanh_layer(tape, h, P)
    out = tape.apply("half_squared_error", h, t=t)
    g = tape.backward(out)
    return out.value, [{k: g[f"{i}.{k}"] for k in P} for i, P in enumerate(params)]


@given(seeds(), st.integers(1, 9), st.integers(1, 10))
def test_checkpointed_gradient_equals_one_tape_bit_for_bit(seed, depth, every):
    params, x, t = _deep_problem(np.random.default_rng(seed), depth)
    L, grads = checkpointed_gradient(_tanh_layer, params, x, lambda tape, h: tape.apply("half_squared_error", h, t=t), every)
    L_ref, grads_ref = _one_tape(params, x, t)
    assert L == L_ref
    assert all(np.array_equal(g[k], r[k]) for g, r in zip(grads, grads_ref) for k in ("W", "b"))


def test_checkpointing_lowers_the_peak_memory():
    # 16 layers whose activations (256 x 32 floats, 64 KiB) outweigh their weights (8 KiB): with one tape every
    # layer's caches are alive at once; with k = 4 only 4 checkpoints and one segment of 4 layers are
    params, x, t = _deep_problem(np.random.default_rng(28), 16, width=32, n=256)

    def peak(fn):
        fn()
        tracemalloc.start()
        fn()
        size = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return size

    loss = lambda tape, h: tape.apply("half_squared_error", h, t=t)  # noqa: E731
    one = peak(lambda: _one_tape(params, x, t))
    four = peak(lambda: checkpointed_gradient(_tanh_layer, params, x, loss, 4))
    assert four < 0.6 * one


@pytest.mark.parametrize(("args", "error", "match"), [
    ({"layer": 3}, TypeError, "'layer' must be a function"),
    ({"loss": None}, TypeError, "'loss' must be a function"),
    ({"params": []}, TypeError, "'params' must be a non-empty list of dicts"),
    ({"params": [np.ones(3)]}, TypeError, "'params' must be a non-empty list of dicts"),
    ({"params": [{"W": "w"}]}, TypeError, r"argument 'params\[0\]\['W'\]'"),
    ({"every": 0}, ValueError, "'every' must be at least 1"),
    ({"every": 1.5}, TypeError, "'every' must be an integer"),
    ({"x": np.array([np.inf])}, ValueError, "'x' contains NaN"),
    ({"layer": lambda tape, h, P: h.value}, TypeError, r"'layer\(tape, h, P\)' must be a Node of this tape"),
    ({"loss": lambda tape, h: h}, ValueError, r"loss\(tape, h\) must return a scalar Node"),
])
def test_checkpointed_gradient_validates_its_arguments(args, error, match):
    params, x, t = _deep_problem(np.random.default_rng(29), 2)
    call = {"layer": _tanh_layer, "params": params, "x": x,
            "loss": lambda tape, h: tape.apply("half_squared_error", h, t=t), "every": 1, **args}
    with pytest.raises(error, match="checkpointed_gradient: .*" + match):
        checkpointed_gradient(call["layer"], call["params"], call["x"], call["loss"], call["every"])
