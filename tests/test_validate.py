"""Tests of bplib._validate: the messages every public function relies on."""

from typing import NamedTuple

import numpy as np
import pytest

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
    with pytest.raises(ValueError, match=r"'h' must lie in \(0, inf, got 0"):
        v.check_real("fn", "h", 0, low=0, low_open=True)
    with pytest.raises(ValueError, match=r"'x' must lie in -inf, 2\], got 3"):
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
