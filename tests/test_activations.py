"""Tests of bplib.activations: values, derivatives, pairs, bad input, extremes."""

import numpy as np
import pytest
from hypothesis import given
from strategies import as_matrix, away_from_zero, float_arrays, hostile_arrays, seeds, small_shapes

from bplib import activations as act
from bplib.gradcheck import check_backward, numerical_derivative

PAIRS = {
    "sigmoid": (act.sigmoid_forward, act.sigmoid_backward),
    "tanh": (act.tanh_forward, act.tanh_backward),
    "relu": (act.relu_forward, act.relu_backward),
}
PRIMES = {"sigmoid": (act.sigmoid, act.sigmoid_prime), "tanh": (act.tanh, act.tanh_prime), "relu": (act.relu, act.relu_prime)}


def test_sigmoid_known_values():
    # sigma(0) = 1/2 and sigma(ln 3) = 1 / (1 + 1/3) = 3/4, by hand.
    assert act.sigmoid(0.0) == 0.5
    assert act.sigmoid(np.log(3.0)) == pytest.approx(0.75, rel=1e-15)
    assert act.sigmoid_prime(0.0) == 0.25


def test_sigmoid_matches_the_textbook_formula_where_it_is_safe():
    z = np.linspace(-30, 30, 601)
    np.testing.assert_allclose(act.sigmoid(z), 1.0 / (1.0 + np.exp(-z)), rtol=1e-14)


def test_tanh_is_a_rescaled_sigmoid():
    z = np.linspace(-8, 8, 161)
    np.testing.assert_allclose(act.tanh(z), 2 * act.sigmoid(2 * z) - 1, atol=1e-14)


def test_relu_values_and_kink_convention():
    z = np.array([-2.0, -0.0, 0.0, 3.0])
    np.testing.assert_array_equal(act.relu(z), [0.0, 0.0, 0.0, 3.0])
    np.testing.assert_array_equal(act.relu_prime(z), [0.0, 0.0, 0.0, 1.0])


@pytest.mark.parametrize("name", ["sigmoid", "tanh", "relu"])
@given(z=away_from_zero(small_shapes))
def test_prime_is_the_numerical_derivative(name, z):
    f, fprime = PRIMES[name]
    expected = np.vectorize(lambda v: numerical_derivative(lambda u: float(f(u)), v))(z)
    np.testing.assert_allclose(fprime(z), expected, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("name", ["sigmoid", "tanh", "relu"])
@given(x=away_from_zero(small_shapes), seed=seeds())
def test_pair_passes_gradient_check(name, x, seed):
    forward, backward = PAIRS[name]
    errors = check_backward(forward, backward, (x,), names=("x",), rng=np.random.default_rng(seed))
    assert set(errors) == {"x"}


@pytest.mark.parametrize("name", ["sigmoid", "tanh", "relu"])
@given(x=float_arrays(small_shapes), seed=seeds())
def test_backward_is_linear_in_dout_and_does_not_mutate(name, x, seed):
    forward, backward = PAIRS[name]
    rng = np.random.default_rng(seed)
    x_before = x.copy()
    out, cache = forward(x)
    d1, d2 = rng.standard_normal(out.shape), rng.standard_normal(out.shape)
    cache_before = tuple(c.copy() for c in cache)
    d1_before = d1.copy()
    np.testing.assert_allclose(backward(2 * d1 + 3 * d2, cache), 2 * backward(d1, cache) + 3 * backward(d2, cache), atol=1e-12)
    np.testing.assert_array_equal(x, x_before)
    np.testing.assert_array_equal(d1, d1_before)
    for c, c0 in zip(cache, cache_before):
        np.testing.assert_array_equal(c, c0)
    assert out.shape == x.shape


@pytest.mark.parametrize("name", ["sigmoid", "tanh", "relu"])
def test_extreme_inputs_stay_finite(name):
    z = np.array([-1000.0, -1e300, 0.0, 1e300, 1000.0, np.finfo(np.float64).max])
    f, fprime = PRIMES[name]
    forward, backward = PAIRS[name]
    out, cache = forward(z)
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # no overflow, no NaN
        assert np.all(np.isfinite(f(z))) and np.all(np.isfinite(fprime(z)))
        assert np.all(np.isfinite(backward(np.ones_like(z), cache)))
    assert np.all(np.isfinite(out))


def test_sigmoid_saturates_correctly():
    s = act.sigmoid(np.array([-1000.0, 1000.0]))
    np.testing.assert_array_equal(s, [0.0, 1.0])
    np.testing.assert_array_equal(act.sigmoid_prime(np.array([-1000.0, 1000.0])), [0.0, 0.0])


@pytest.mark.parametrize("name", ["sigmoid", "tanh", "relu"])
def test_float32_is_kept(name):
    forward, backward = PAIRS[name]
    x = np.linspace(-2, 2, 7, dtype=np.float32)
    out, cache = forward(x)
    assert out.dtype == np.float32
    assert backward(np.ones_like(out), cache).dtype == np.float32


def test_integers_and_lists_become_float64():
    assert act.sigmoid([0, 1]).dtype == np.float64
    assert act.relu(np.arange(3)).dtype == np.float64


@pytest.mark.parametrize("fn", [act.sigmoid, act.sigmoid_prime, act.tanh, act.tanh_prime, act.relu, act.relu_prime])
@pytest.mark.parametrize("bad", ["text", None, np.array(["a"]), np.array([1 + 2j]), np.array([True])])
def test_plain_functions_reject_wrong_types(fn, bad):
    with pytest.raises(TypeError, match="'z'"):
        fn(bad)


@pytest.mark.parametrize("fn", [act.sigmoid, act.tanh_prime, act.relu])
def test_plain_functions_reject_nan(fn):
    with pytest.raises(ValueError, match="'z' contains NaN"):
        fn(np.array([0.0, np.nan]))


@pytest.mark.parametrize("name", ["sigmoid", "tanh", "relu"])
def test_forward_rejects_bad_x(name):
    forward, _ = PAIRS[name]
    with pytest.raises(TypeError, match=f"{name}_forward: argument 'x'"):
        forward(np.array(["a"]))
    with pytest.raises(ValueError, match="'x' contains NaN"):
        forward(np.array([np.inf]))


@pytest.mark.parametrize("name", ["sigmoid", "tanh", "relu"])
def test_backward_rejects_dout_of_wrong_shape(name):
    forward, backward = PAIRS[name]
    _, cache = forward(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"'dout' has shape \(3, 2\) but '(out|x)' has shape \(2, 3\)"):
        backward(np.zeros((3, 2)), cache)


@pytest.mark.parametrize("name", ["sigmoid", "tanh", "relu"])
def test_backward_rejects_a_foreign_cache(name):
    _, backward = PAIRS[name]
    with pytest.raises(TypeError, match="'cache'"):
        backward(np.zeros(2), [np.zeros(2)])
    with pytest.raises(TypeError, match="'cache'"):
        backward(np.zeros(2), (np.zeros(2), np.zeros(2)))


# --- hostile input: every function refuses it by its own name (issue 13) ---

PLAIN = [act.sigmoid, act.sigmoid_prime, act.tanh, act.tanh_prime, act.relu, act.relu_prime]
FORWARDS = [act.sigmoid_forward, act.tanh_forward, act.relu_forward]


@pytest.mark.parametrize("fn", PLAIN + FORWARDS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("case", list(hostile_arrays()))
def test_every_function_refuses_hostile_input_by_its_own_name(fn, case):
    value, error = hostile_arrays()[case]
    arg = "x" if fn.__name__.endswith("_forward") else "z"
    with pytest.raises(error, match=f"^{fn.__name__}: argument '{arg}'"):
        fn(value)


@pytest.mark.parametrize("name", ["sigmoid", "tanh", "relu"])
@pytest.mark.parametrize("case", list(hostile_arrays()))
def test_every_backward_refuses_a_hostile_dout_by_its_own_name(name, case):
    forward, backward = PAIRS[name]
    _, cache = forward(np.ones((2, 3)))
    value, error = hostile_arrays()[case]
    with pytest.raises(error, match=f"^{name}_backward: argument 'dout'"):
        backward(value, cache)


def test_sigmoid_prime_errors_name_sigmoid_prime():
    with pytest.raises(ValueError, match=r"^sigmoid_prime: argument 'z' contains NaN or infinity \(first at index \(1,\): nan\)"):
        act.sigmoid_prime(np.array([0.0, np.nan]))


@pytest.mark.parametrize("fn", PLAIN + FORWARDS, ids=lambda f: f.__name__)
def test_a_matrix_is_read_as_a_plain_array(fn):
    # np.matrix turns * into a matrix product; the functions must compute elementwise all the same.
    z = np.array([[-1.5, 0.0, 2.0], [0.5, -3.0, 1.0], [4.0, -0.25, -2.0]])
    got = fn(as_matrix(z))
    want = fn(z)
    if isinstance(got, tuple):
        (got, _), (want, _) = got, want
    assert type(got) is np.ndarray
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("name", ["sigmoid", "tanh", "relu"])
def test_backward_reads_a_matrix_dout_as_a_plain_array(name):
    forward, backward = PAIRS[name]
    x = np.array([[-1.5, 0.5], [2.0, -0.5]])
    _, cache = forward(x)
    dout = np.array([[1.0, 2.0], [3.0, 4.0]])
    got = backward(as_matrix(dout), cache)
    assert type(got) is np.ndarray
    np.testing.assert_array_equal(got, backward(dout, cache))


def test_sigmoid_is_the_two_branch_formula():
    # 1 / (1 + e^-z) for z >= 0 and e^z / (1 + e^z) below, computed here branch by branch.
    z = np.linspace(-40.0, 40.0, 801)
    by_branch = np.array([1.0 / (1.0 + np.exp(-v)) if v >= 0 else np.exp(v) / (1.0 + np.exp(v)) for v in z])
    np.testing.assert_allclose(act.sigmoid(z), by_branch, rtol=5e-16, atol=0)
    assert act.sigmoid(-700.0) > 0  # e^-700 ~ 1e-304: the tail keeps its digits


def test_a_number_gives_a_numpy_scalar_of_its_dtype():
    for fn in PLAIN:
        out = fn(0.5)
        assert isinstance(out, np.float64) and np.ndim(out) == 0, fn.__name__
    assert act.sigmoid(np.float32(0.5)).dtype == np.float32
    out, cache = act.sigmoid_forward(2.0)
    assert np.ndim(out) == 0 and act.sigmoid_backward(1.0, cache) == pytest.approx(out * (1 - out), rel=1e-15)


def test_relu_backward_is_dout_times_the_mask():
    x = np.array([-2.0, -0.0, 0.0, 1e-300, 3.0])
    dout = np.array([5.0, 6.0, 7.0, 8.0, -9.0])
    _, cache = act.relu_forward(x)
    np.testing.assert_array_equal(act.relu_backward(dout, cache), [0.0, 0.0, 0.0, 8.0, -9.0])
    assert act.relu_backward(dout.astype(np.float32), cache).dtype == np.float32
