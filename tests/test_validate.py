"""Tests of bplib._validate: the messages every public function relies on."""

import fractions
from typing import NamedTuple

import numpy as np
import pytest
from strategies import as_matrix

from bplib import _validate as v


def test_as_float_array_keeps_float_dtypes_and_converts_integers():
    x32 = np.ones(3, dtype=np.float32)
    assert v.as_float_array("f", "x", x32) is x32
    assert v.as_float_array("f", "x", np.arange(3)).dtype == np.float64
    assert v.as_float_array("f", "x", 2).shape == ()
    assert v.as_float_array("f", "x", [[1, 2], [3, 4]]).shape == (2, 2)
    assert v.as_float_array("f", "x", np.float32(1.5)).dtype == np.float32


@pytest.mark.parametrize("bad, what", [
    (True, "bool"), ("a", "str"), (None, "NoneType"), ({1: 2}, "dict"),
    (np.array([True]), "dtype float32 or float64, got bool"),
    (np.array([1j]), "complex128"), (np.array(["a"]), "<U1"), (np.float16(1.0), "float16"),
])
def test_as_float_array_refuses_wrong_types(bad, what):
    with pytest.raises(TypeError, match=f"^fn: argument 'x' .*{what}"):
        v.as_float_array("fn", "x", bad)


def test_as_float_array_refuses_ragged_lists():
    with pytest.raises(TypeError, match="'x' is not a rectangular array"):
        v.as_float_array("fn", "x", [[1.0, 2.0], [3.0]])


def test_as_float_array_checks_ndim_and_finiteness():
    with pytest.raises(ValueError, match=r"'x' must have 2 dimensions, got shape \(3,\)"):
        v.as_float_array("fn", "x", np.zeros(3), ndim=2)
    with pytest.raises(ValueError, match="NaN or infinity"):
        v.as_float_array("fn", "x", np.array([-np.inf]))
    assert np.isnan(v.as_float_array("fn", "x", np.array([np.nan]), finite=False)[0])


def test_check_shape_names_expected_and_actual():
    v.check_shape("fn", "W", np.zeros((3, 4)), (3, None))
    with pytest.raises(ValueError, match=r"^fn: argument 'W' must have shape \(\?, 5\), got \(3, 4\)$"):
        v.check_shape("fn", "W", np.zeros((3, 4)), (None, 5))
    with pytest.raises(ValueError, match=r"must have shape \(4,\), got \(4, 1\)"):
        v.check_shape("fn", "b", np.zeros((4, 1)), (4,))


def test_check_same_shape_names_both():
    with pytest.raises(ValueError, match=r"'a' has shape \(2,\) but 'b' has shape \(1, 2\); they must match"):
        v.check_same_shape("fn", "a", np.zeros(2), "b", np.zeros((1, 2)))


def test_check_int():
    assert v.check_int("fn", "n", np.int64(3), minimum=1) == 3
    with pytest.raises(TypeError, match="'n' must be an integer, got bool"):
        v.check_int("fn", "n", True)
    with pytest.raises(TypeError, match="got float"):
        v.check_int("fn", "n", 2.0)
    with pytest.raises(ValueError, match="'n' must be at least 1, got 0"):
        v.check_int("fn", "n", 0, minimum=1)


def test_check_real():
    assert v.check_real("fn", "lr", 1) == 1.0
    with pytest.raises(TypeError, match="'lr' must be a finite real number"):
        v.check_real("fn", "lr", float("inf"))
    with pytest.raises(TypeError, match="'lr' must be a finite real number"):
        v.check_real("fn", "lr", "0.1")
    with pytest.raises(ValueError, match=r"'m' must lie in \[0, 1\), got 1"):
        v.check_real("fn", "m", 1, low=0, high=1, high_open=True)
    with pytest.raises(ValueError, match=r"'h' must lie in \(0, inf\), got 0$"):
        v.check_real("fn", "h", 0, low=0, low_open=True)
    with pytest.raises(ValueError, match=r"'x' must lie in \(-inf, 2\], got 3$"):
        v.check_real("fn", "x", 3, high=2)


def test_check_rng_and_cache():
    rng = np.random.default_rng(0)
    assert v.check_rng("fn", "rng", rng) is rng
    with pytest.raises(TypeError, match="'rng' must be a numpy Generator"):
        v.check_rng("fn", "rng", np.random.RandomState(0))



class _PairCache(NamedTuple):
    a: int
    b: int
    made_by = "pair_forward"


class _OtherCache(NamedTuple):
    a: int
    b: int
    made_by = "other_forward"


def test_check_cache_accepts_its_type_and_names_both_functions_otherwise():
    cache = _PairCache(1, 2)
    assert v.check_cache("pair_backward", cache, _PairCache) is cache
    with pytest.raises(TypeError, match=r"^pair_backward: argument 'cache' must be the _PairCache that pair_forward "
                                        r"returns, got a _OtherCache from other_forward$"):
        v.check_cache("pair_backward", _OtherCache(1, 2), _PairCache)
    # a plain tuple with the same entries is refused too: only the forward's own type is trusted
    with pytest.raises(TypeError, match=r"must be the _PairCache that pair_forward returns, got a tuple$"):
        v.check_cache("pair_backward", (1, 2), _PairCache)


@pytest.mark.parametrize("shape", [(3, 4), (128, 256)])  # scanned at once, and summed first
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_all_finite_is_exact_on_both_paths(shape, dtype):
    x = np.ones(shape, dtype)
    assert v.all_finite(x) and v.all_finite(x[:, ::2]) and v.all_finite(np.zeros((0, 5), dtype))
    # entries at the float limit are finite
    assert v.all_finite(np.full(shape, np.finfo(dtype).max, dtype))
    assert v.all_finite(np.full(shape, 1e30 if dtype == np.float32 else 1e200, dtype))
    for bad in (np.nan, np.inf, -np.inf):
        y = x.copy()
        y[-1, -1] = bad
        assert not v.all_finite(y) and not v.all_finite(y[:, ::-1])


class _Counting(np.ndarray):
    """An ndarray subclass that counts the arithmetic done on it (chapter 10 counts flops this way)."""

    calls = 0

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        if ufunc in (np.add, np.subtract, np.multiply, np.divide):
            _Counting.calls += 1
        return getattr(ufunc, method)(*(np.asarray(a) for a in inputs), **kwargs)


@pytest.mark.parametrize("shape", [(3, 4), (128, 256)])
def test_checks_do_no_arithmetic_on_a_subclass(shape):
    x = np.ones(shape).view(_Counting)
    _Counting.calls = 0
    assert v.as_float_array("fn", "x", x) is x  # kept as it is, unlike np.matrix
    assert v.all_finite(x)
    assert _Counting.calls == 0  # the sum of a large array is taken on a plain view


def test_as_float_array_reads_a_matrix_as_a_plain_array():
    m = as_matrix([[1.0, 2.0], [3.0, 4.0]])
    x = v.as_float_array("fn", "x", m)
    assert type(x) is np.ndarray and x.shape == (2, 2)
    np.testing.assert_array_equal(x * x, [[1.0, 4.0], [9.0, 16.0]])  # elementwise, not a matrix product
    assert type(v.as_float_array("fn", "x", as_matrix([[1, 2]]))) is np.ndarray


def test_as_float_array_refuses_a_masked_array():
    with pytest.raises(TypeError, match="^fn: argument 'x' is a masked array; its mask would be ignored"):
        v.as_float_array("fn", "x", np.ma.masked_array([1.0, 2.0], mask=[False, True]))


def test_as_float_array_reads_real_numbers_and_refuses_one_too_large():
    assert v.as_float_array("fn", "x", fractions.Fraction(1, 4)) == 0.25
    assert v.as_float_array("fn", "x", 7).dtype == np.float64
    with pytest.raises(ValueError, match="^fn: argument 'x' is too large for a float"):
        v.as_float_array("fn", "x", 2**2000)
    with pytest.raises(TypeError, match="^fn: argument 'x' must be a numpy array of floats, got complex"):
        v.as_float_array("fn", "x", 1 + 2j)


def test_as_float_array_names_the_first_non_finite_entry():
    x = np.zeros((2, 3))
    x[1, 2] = -np.inf
    with pytest.raises(ValueError, match=r"^fn: argument 'x' contains NaN or infinity \(first at index \(1, 2\): -inf\)$"):
        v.as_float_array("fn", "x", x)


def test_check_int_refuses_integers_beyond_int64():
    assert v.check_int("fn", "n", 2**63 - 1) == 2**63 - 1
    with pytest.raises(ValueError, match=r"^fn: argument 'n' must lie within \+-\(2\*\*63 - 1\), got an integer of 2001 bits$"):
        v.check_int("fn", "n", 2**2000)
    with pytest.raises(TypeError, match="must be an integer, got bool"):
        v.check_int("fn", "n", np.True_)


def test_check_real_reads_fractions_and_refuses_huge_integers_and_bools():
    assert v.check_real("fn", "lr", fractions.Fraction(1, 8)) == 0.125
    assert v.check_real("fn", "lr", np.float32(0.5)) == 0.5 and isinstance(v.check_real("fn", "lr", np.int64(2)), float)
    with pytest.raises(ValueError, match="^fn: argument 'lr' is too large for a float"):
        v.check_real("fn", "lr", 2**2000)
    with pytest.raises(TypeError, match="^fn: argument 'lr' must be a finite real number, got bool np.True_$"):
        v.check_real("fn", "lr", np.True_)
    with pytest.raises(TypeError, match=r"^fn: argument 'lr' must be a finite real number, got ndarray array\(\[0\., .*\.\.\.$") as info:
        v.check_real("fn", "lr", np.zeros(100))
    assert len(str(info.value)) < 120  # a long value is shortened in the message


def test_check_real_range_messages_have_both_brackets():
    cases = [(dict(low=0, low_open=True), 0, "(0, inf)"), (dict(low=0), -1, "[0, inf)"),
             (dict(high=1, high_open=True), 1, "(-inf, 1)"), (dict(low=0, high=1), 2, "[0, 1]")]
    for bounds, value, text in cases:
        with pytest.raises(ValueError) as info:
            v.check_real("fn", "a", value, **bounds)
        assert str(info.value) == f"fn: argument 'a' must lie in {text}, got {value}"


def test_check_bool():
    assert v.check_bool("fn", "training", True) is True and v.check_bool("fn", "training", np.False_) is False
    for bad in ("no", 1, 0.0, None, np.array(True)):
        with pytest.raises(TypeError, match="^fn: argument 'training' must be True or False, got"):
            v.check_bool("fn", "training", bad)


def test_overflow_error_names_the_function_the_quantity_and_the_limit():
    e = v.overflow_error("f", "the loss", np.float32)
    assert isinstance(e, ValueError)
    assert str(e) == "f: the loss overflows float32 (its magnitude exceeds 3.4e+38); scale the inputs down"
