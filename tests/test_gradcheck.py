"""Tests of bplib.gradcheck: the checker itself must catch wrong gradients."""

import inspect

import numpy as np
import pytest
from hypothesis import given
from strategies import as_matrix, float_arrays, hostile_arrays, seeds, small_shapes

from bplib import activations as act
from bplib.gradcheck import (
    GradientCheckError,
    check_backward,
    compare,
    error_bound,
    numerical_derivative,
    numerical_gradient,
    numerical_gradient_array,
    rel_error,
)


def test_rel_error_formula():
    # |1 - 1.1| / (1 + 1.1) = 0.1 / 2.1, by hand; tiny values use the 1e-8 floor.
    assert rel_error(np.array([1.0]), np.array([1.1])) == pytest.approx(0.1 / 2.1)
    assert rel_error(np.array([0.0]), np.array([1e-10])) == pytest.approx(1e-2)
    assert rel_error(np.zeros(3), np.zeros(3)) == 0.0
    assert rel_error(np.zeros(0), np.zeros(0)) == 0.0


def test_rel_error_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match=r"'a' has shape \(2,\) but 'b' has shape \(3,\)"):
        rel_error(np.zeros(2), np.zeros(3))


def test_numerical_derivative_of_known_functions():
    assert numerical_derivative(np.sin, 0.3) == pytest.approx(np.cos(0.3), rel=1e-9)
    assert numerical_derivative(lambda x: x**3, 2.0) == pytest.approx(12.0, rel=1e-9)


def test_central_difference_error_is_second_order():
    # For exp at 0 the error of a central difference is about h^2/6 (Taylor).
    for h in (1e-2, 1e-3):
        err = numerical_derivative(np.exp, 0.0, h=h) - 1.0
        assert err == pytest.approx(h * h / 6, rel=1e-2)


@given(x=float_arrays(small_shapes))
def test_numerical_gradient_of_a_quadratic(x):
    # f(x) = sum(x^2) has gradient 2x; the central difference is exact up to rounding.
    # Rounding: f is known to a few ulps of its size, and x + h to an ulp of x, so the
    # quotient is off by about eps (|f| + |x| max|x|) / h; a factor 8 covers the sums.
    h, eps = 1e-5, np.finfo(np.float64).eps
    f = lambda v: np.sum(v**2)  # noqa: E731
    scale = f(x) + np.abs(x) * np.max(np.abs(x), initial=0.0) + 1.0
    np.testing.assert_allclose(numerical_gradient(f, x, h=h), 2 * x, rtol=0, atol=8 * eps * np.max(scale) / h)


def test_numerical_gradient_does_not_modify_its_argument():
    x = np.array([1.0, 2.0])
    numerical_gradient(lambda v: float(np.sum(v)), x)
    np.testing.assert_array_equal(x, [1.0, 2.0])


@given(x=float_arrays(small_shapes), seed=seeds())
def test_numerical_gradient_array_is_a_vjp(x, seed):
    # For f(x) = 3x, the vector-Jacobian product with dout is 3 dout.
    dout = np.random.default_rng(seed).standard_normal(x.shape)
    np.testing.assert_allclose(numerical_gradient_array(lambda v: 3 * v, x, dout), 3 * dout, atol=1e-8)


def _wrong_sigmoid_backward(dout, cache):
    (out,) = cache
    return dout * out  # the planted bug: the factor (1 - out) is missing


def test_check_backward_catches_a_planted_wrong_backward():
    x = np.linspace(-2, 2, 6).reshape(2, 3)
    with pytest.raises(GradientCheckError, match=r"gradient of 'x' is wrong at index \(\d, \d\): analytic .* numerical .* relative error"):
        check_backward(act.sigmoid_forward, _wrong_sigmoid_backward, (x,), names=("x",))


def test_check_backward_catches_a_small_error():
    def off_by_a_little(dout, cache):
        return act.sigmoid_backward(dout, cache) * (1 + 1e-4)

    with pytest.raises(GradientCheckError):
        check_backward(act.sigmoid_forward, off_by_a_little, (np.linspace(-1, 1, 5),))


def test_check_backward_catches_a_wrong_shape_and_count():
    def two_grads(dout, cache):
        return act.sigmoid_backward(dout, cache), dout

    def transposed(dout, cache):
        return act.sigmoid_backward(dout, cache).T

    x = np.ones((2, 3))
    with pytest.raises(GradientCheckError, match="returned 2 gradients, expected 1"):
        check_backward(act.sigmoid_forward, two_grads, (x,))
    with pytest.raises(GradientCheckError, match=r"has shape \(3, 2\), but 'arg0' has shape \(2, 3\)"):
        check_backward(act.sigmoid_forward, transposed, (x,))


def test_check_backward_passes_a_correct_pair_and_reports_errors():
    errors = check_backward(act.tanh_forward, act.tanh_backward, (np.linspace(-2, 2, 8),), names=("x",))
    assert set(errors) == {"x"} and errors["x"] < 1e-6


def test_check_backward_with_several_arguments_and_kwargs():
    def forward(x, w, scale=1.0):
        return scale * x * w, (x, w, scale)

    def backward(dout, cache):
        x, w, scale = cache
        return scale * dout * w, scale * dout * x

    rng = np.random.default_rng(3)
    x, w = rng.standard_normal(4), rng.standard_normal(4)
    errors = check_backward(forward, backward, (x, w), kwargs={"scale": 2.5}, names=("x", "w"), rng=rng)
    assert set(errors) == {"x", "w"}


def _scaled_sum(x, s):
    return float(np.sum(x * s)), (s,)


def test_check_backward_reports_the_largest_relative_error_of_all_entries():
    # L = sum(x * s) has dL/dx = dL s. With s = (2, 0) the second gradient is 0, and the
    # planted 5e-9 there is an absolute error below atol = 1e-8, so the check passes,
    # but its relative error 5e-9 / max(1e-8, 5e-9) = 0.5 is what is reported: the
    # largest over all entries, as rel_error defines it. The first entry's planted
    # error, 4e-7 / (4 + 4e-7) = 1e-7 to first order, is smaller.
    def backward(dL, cache):
        (s,) = cache
        return np.array([dL * s[0] * (1 + 2e-7), 5e-9])

    s = np.array([2.0, 0.0])
    errors = check_backward(_scaled_sum, backward, (np.array([0.3, -0.7]), s), wrt=(0,), names=("x",))
    assert errors["x"] == pytest.approx(0.5, rel=1e-6)
    with pytest.raises(GradientCheckError, match=r"index \(1,\)"):
        check_backward(_scaled_sum, backward, (np.array([0.3, -0.7]), s), wrt=(0,), atol=0.0)


def test_check_backward_of_an_empty_argument_reports_zero():
    x = np.zeros((0, 3))
    assert check_backward(act.tanh_forward, act.tanh_backward, (x,)) == {"arg0": 0.0}


def test_check_backward_does_not_modify_the_callers_arrays():
    x = np.linspace(-1, 1, 4)
    check_backward(act.sigmoid_forward, act.sigmoid_backward, (x,))
    np.testing.assert_array_equal(x, np.linspace(-1, 1, 4))


def test_check_backward_rejects_bad_arguments():
    with pytest.raises(ValueError, match="'names' has 2 entries but 'wrt' has 1"):
        check_backward(act.sigmoid_forward, act.sigmoid_backward, (np.ones(2),), names=("a", "b"))
    with pytest.raises(TypeError, match="'rng' must be a numpy Generator"):
        check_backward(act.sigmoid_forward, act.sigmoid_backward, (np.ones(2),), rng=0)


@pytest.mark.parametrize("wrt", [(1,), (-1,), (0.0,), (True,)])
def test_check_backward_rejects_a_bad_wrt(wrt):
    with pytest.raises(ValueError, match=r"check_backward: argument 'wrt' must hold indices of 'args' in \[0, 1\)"):
        check_backward(act.sigmoid_forward, act.sigmoid_backward, (np.ones(2),), wrt=wrt)


@pytest.mark.parametrize("option, value", [("h", 0.0), ("tol", -1e-6), ("atol", -1.0)])
def test_check_backward_rejects_bad_tolerances(option, value):
    with pytest.raises(ValueError, match=f"check_backward: argument '{option}' must lie in"):
        check_backward(act.sigmoid_forward, act.sigmoid_backward, (np.ones(2),), **{option: value})


def test_numerical_steps_must_be_positive():
    with pytest.raises(ValueError, match="'h' must lie in"):
        numerical_derivative(np.sin, 0.0, h=0.0)
    with pytest.raises(ValueError, match="'h' must lie in"):
        numerical_gradient(np.sum, np.ones(2), h=-1.0)
    with pytest.raises(TypeError, match="'x' must be a finite real number"):
        numerical_derivative(np.sin, float("nan"))


def test_default_steps_are_the_ones_chapter_1_measures():
    import inspect

    steps = {fn.__name__: inspect.signature(fn).parameters["h"].default
             for fn in (numerical_derivative, numerical_gradient, numerical_gradient_array, check_backward)}
    assert steps == {"numerical_derivative": 1e-5, "numerical_gradient": 1e-5,
                     "numerical_gradient_array": 1e-5, "check_backward": 1e-6}


def test_check_backwards_smaller_default_step_resolves_a_strongly_curved_loss():
    # -log p near p = 0.01 has a third derivative of order 1e6: the truncation error of a
    # step of 1e-5 costs about two digits that the default of 1e-6 keeps
    from bplib import losses

    p = np.random.default_rng(0).uniform(0.005, 0.02, size=(6, 1))
    args = (p, np.ones((6, 1)))
    pair = (losses.binary_cross_entropy_forward, losses.binary_cross_entropy_backward)
    default = check_backward(*pair, args, wrt=(0,), rng=np.random.default_rng(1))["arg0"]
    coarse = check_backward(*pair, args, wrt=(0,), rng=np.random.default_rng(1), h=1e-5, tol=1e-3)["arg0"]
    assert default < 1e-7 and coarse > 10 * default


def test_error_bound():
    assert error_bound(3.2e-11) == "< 1e-10"
    assert error_bound(1e-7) == "< 1e-06"
    assert error_bound(0.0) == "0"
    assert error_bound(0.5) == "< 1e+00"
    with pytest.raises(ValueError, match="'e' must lie in"):
        error_bound(-1.0)


def test_compare_prints_a_table_and_reports(capsys):
    a = np.arange(6.0).reshape(2, 3)
    assert compare({"W": (a, a.copy()), "b": (np.ones(3), np.ones(3) + 1e-12)}) is True
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["name", "shape", "max", "abs", "diff", "rel", "error", "ok"]
    assert out[1].split() == ["W", "(2,", "3)", "0", "0", "ok"]
    # |1e-12| rounded: the difference is about 1e-12, its relative error about 5e-13
    assert out[2].split()[:2] == ["b", "(3,)"] and out[2].split()[2:] == ["<", "1e-11", "<", "1e-12", "ok"]
    assert compare({"W": (a, a + 1.0)}) is False
    assert "WRONG" in capsys.readouterr().out


def test_compare_rejects_bad_input():
    with pytest.raises(TypeError, match="non-empty dict"):
        compare({})
    with pytest.raises(TypeError, match="must be a pair"):
        compare({"W": np.ones(2)})
    with pytest.raises(ValueError, match=r"'W' has shape \(2,\) but its reference has shape \(3,\)"):
        compare({"W": (np.ones(2), np.ones(3))})


# --- the checker the whole book trusts: no overflow, no silent pass (issue 13) ---

MAX = np.finfo(np.float64).max


def test_rel_error_does_not_overflow():
    # |1.7 - 1.53| / (1.7 + 1.53) = 0.17 / 3.23 at any scale; it was 0 (the sum overflowed to inf)
    assert rel_error(1.7e308, 1.53e308) == pytest.approx(0.17 / 3.23, rel=1e-14)
    # |a - b| / (|a| + |b|) = 1 for opposite signs; it was NaN (inf / inf)
    assert rel_error(1e308, -1e308) == 1.0
    assert rel_error(np.array([MAX, -MAX]), np.array([-MAX, MAX])) == 1.0
    # ordinary values are unchanged (halving both is exact): compare with the formula written out
    a, b = np.array([0.3, -2.5, 1e-12]), np.array([0.30000001, -2.4, 0.0])
    expected = np.max(np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b)))
    assert rel_error(a, b) == expected


def test_compare_sees_a_ten_percent_difference_near_the_float_limit(capsys):
    assert compare({"big": (np.array([1.7e308]), np.array([1.53e308]))}) is False
    assert "WRONG" in capsys.readouterr().out
    assert compare({"opposite": (np.array([1e308]), np.array([-1e308]))}) is False
    out = capsys.readouterr().out
    assert "> 1.8e+308" in out and "WRONG" in out  # |a - b| = 2e308 is shown, not a crash
    assert compare({"same": (np.array([MAX]), np.array([MAX]))}) is True


def test_compare_refuses_bad_tolerances():
    for kwargs in (dict(tol=-1.0), dict(atol=-1e-8), dict(tol=float("nan"))):
        with pytest.raises((TypeError, ValueError), match="^compare: argument '(tol|atol)'"):
            compare({"g": (np.ones(2), np.ones(2))}, **kwargs)


def test_compare_reads_matrices_as_plain_arrays(capsys):
    assert compare({"m": (as_matrix([[1.0, 2.0]]), np.array([[1.0, 2.0]]))}) is True
    assert "(1, 2)" in capsys.readouterr().out


def test_numerical_gradient_array_refuses_a_dout_of_the_wrong_shape():
    # it broadcast dout silently: a (2, 3) dout against an output of shape (3,) gave a wrong answer
    with pytest.raises(ValueError, match=r"^numerical_gradient_array: argument 'dout' has shape \(2, 3\) "
                                         r"but the output of f has shape \(3,\)"):
        numerical_gradient_array(lambda v: 2 * v, np.ones(3), np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"^numerical_gradient_array: argument 'dout' has shape \(1,\)"):
        numerical_gradient_array(lambda v: 2 * v, np.ones(3), np.ones(1))


def test_numerical_gradient_array_errors_name_it():
    with pytest.raises(ValueError, match="^numerical_gradient_array: argument 'x' contains NaN"):
        numerical_gradient_array(lambda v: v, np.array([np.nan]), np.ones(1))
    with pytest.raises(TypeError, match="^numerical_gradient_array: argument 'x'"):
        numerical_gradient_array(lambda v: v, "x", np.ones(1))


@pytest.mark.parametrize("fn", [numerical_gradient, numerical_derivative])
def test_a_step_lost_in_rounding_is_refused(fn):
    # next to x = 1e12 the float spacing is 1.2e-4: x + 1e-5 and x - 1e-5 are 2.4e-4 apart, not 2e-5,
    # and the derivative of the identity came out as 0 (x = 1e30) or 12 times too large (x = 1e12)
    x = np.array([1e12]) if fn is numerical_gradient else 1e12
    f = (lambda v: float(np.sum(v))) if fn is numerical_gradient else (lambda v: v)
    with pytest.raises(ValueError, match=f"^{fn.__name__}: the step h = 1e-05 is too small for x(\\[0\\])? = 1e\\+12"):
        fn(f, x)
    x_ok = np.array([1e12]) if fn is numerical_gradient else 1e12
    got = fn(f, x_ok, h=1e7)  # a step of about 1e-5 |x| works
    assert np.all(np.isclose(got, 1.0, rtol=1e-6))


@pytest.mark.parametrize("fn", [numerical_gradient, numerical_derivative])
def test_f_must_give_a_finite_number(fn):
    x = np.ones(2) if fn is numerical_gradient else 1.0
    with pytest.raises(TypeError, match=f"^{fn.__name__}: f must return a number, got an array of shape"):
        fn(lambda v: np.ones(3), x)
    with pytest.raises(ValueError, match=f"^{fn.__name__}: f returned inf"):
        fn(lambda v: np.inf, x)


@pytest.mark.parametrize("fn", [numerical_gradient, numerical_gradient_array])
@pytest.mark.parametrize("case", list(hostile_arrays()))
def test_numerical_gradients_refuse_a_hostile_x_by_name(fn, case):
    value, error = hostile_arrays()[case]
    args = (lambda v: float(np.sum(v)), value) if fn is numerical_gradient else (lambda v: v, value, np.ones((2, 3)))
    with pytest.raises(error, match=f"^{fn.__name__}: argument 'x'"):
        fn(*args)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_check_backward_catches_a_non_finite_gradient(bad):
    # a NaN gradient passed before: every comparison with NaN is False, so no entry was 'bad'
    def broken(dout, cache):
        g = act.tanh_backward(dout, cache)
        g[1] = bad
        return g

    with pytest.raises(GradientCheckError, match=r"^check_backward: gradient of 'x' is not finite at index \(1,\)"):
        check_backward(act.tanh_forward, broken, (np.linspace(-1, 1, 4),), names=("x",))


def test_check_backward_catches_a_complex_gradient():
    with pytest.raises(GradientCheckError, match="^check_backward: gradient of 'x' must hold real numbers, got dtype complex128"):
        check_backward(act.tanh_forward, lambda d, c: act.tanh_backward(d, c) + 0j, (np.ones(3),), names=("x",))


def test_check_backward_refuses_malformed_arguments():
    x = np.ones(3)
    with pytest.raises(TypeError, match="^check_backward: argument 'args' must be a tuple"):
        check_backward(act.tanh_forward, act.tanh_backward, x)  # the array itself, not (x,)
    with pytest.raises(TypeError, match="^check_backward: argument 'kwargs' must be a dict"):
        check_backward(act.tanh_forward, act.tanh_backward, (x,), kwargs=[("a", 1)])
    with pytest.raises(TypeError, match="^check_backward: argument 'names' must be a tuple of strings"):
        check_backward(act.tanh_forward, act.tanh_backward, (x,), names="x")
    with pytest.raises(TypeError, match="^check_backward: argument 'forward' must be a function"):
        check_backward("tanh", act.tanh_backward, (x,))
    with pytest.raises(TypeError, match=r"^check_backward: forward must return a pair \(out, cache\), got ndarray"):
        check_backward(act.tanh, act.tanh_backward, (x,))
    with pytest.raises(TypeError, match="^check_backward: args\\[0\\] is a masked array"):
        check_backward(act.tanh_forward, act.tanh_backward, (np.ma.masked_array(x, mask=[0, 1, 0]),))


def test_check_backward_names_a_forward_that_overflows():
    def forward(x):
        return np.exp(x), None

    with np.errstate(over="ignore"), pytest.raises(ValueError, match="^check_backward: forward returned inf"):
        check_backward(forward, lambda d, c: d, (np.array([709.78]),), h=1e-2)


def test_the_defaults_of_the_numerical_functions_are_unchanged():
    for fn in (numerical_derivative, numerical_gradient, numerical_gradient_array):
        assert inspect.signature(fn).parameters["h"].default == 1e-5
    params = inspect.signature(check_backward).parameters
    assert (params["tol"].default, params["atol"].default) == (1e-6, 1e-8)
    assert (inspect.signature(compare).parameters["tol"].default, inspect.signature(compare).parameters["atol"].default) == (1e-6, 1e-8)
