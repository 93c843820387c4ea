"""Tests of bplib.gradcheck: the checker itself must catch wrong gradients."""

import numpy as np
import pytest
from hypothesis import given
from strategies import float_arrays, seeds, small_shapes

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
    np.testing.assert_allclose(numerical_gradient(lambda v: np.sum(v**2), x), 2 * x, atol=1e-8)


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
