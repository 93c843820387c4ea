"""Private input checks shared by every public function of bplib.

Each check raises ``TypeError`` for a wrong type or dtype and ``ValueError``
for a wrong shape or value, with a message that names the calling function,
the argument, what was expected and what was given.
"""

import math
import numbers

import numpy as np

FLOAT_DTYPES = (np.float32, np.float64)
INT64_MAX = np.iinfo(np.int64).max


def all_finite(x):
    """True when no entry of the float array ``x`` is NaN or infinite.

    For a large array, a sum first, which is finite for almost every finite array
    and makes no temporary array (a new array per call costs more than the sum, see
    benchmarks/results.md); the element-wise scan runs only when the sum is not
    finite (a NaN, an infinity, or a sum that overflowed). np.asarray keeps an
    ndarray subclass's own arithmetic (one that counts operations, say) out of it.
    A small array is scanned at once.
    """
    if x.size < 16384:
        return bool(np.isfinite(x).all())
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(np.add.reduce(np.asarray(x), axis=None)):
            return True
    return bool(np.isfinite(x).all())


def _first_bad(x):
    """The index and value of the first non-finite entry of x, for an error message."""
    i = np.unravel_index(int(np.argmin(np.isfinite(x))), x.shape) if x.ndim else ()
    return tuple(int(k) for k in i), x[i]


def as_float_array(fn, name, x, *, ndim=None, finite=True):
    """Return ``x`` as a plain float32 or float64 ndarray, or raise a clear error.

    Python numbers, lists and integer arrays become float64; float32 and
    float64 arrays keep their dtype. An np.matrix, whose ``*`` would mean a
    matrix product, becomes a plain ndarray with the same values; a masked array
    is refused (its mask would be ignored). Booleans,
    complex numbers, float16, strings and objects are refused, as are NaN and
    infinity when ``finite`` is true.
    """
    if isinstance(x, np.ma.MaskedArray):
        raise TypeError(f"{fn}: argument '{name}' is a masked array; its mask would be ignored: "
                        f"pass x.filled(value) or x.compressed() instead")
    if isinstance(x, np.matrix):
        arr = np.asarray(x)  # a plain ndarray with the same values, so that * stays elementwise
    elif isinstance(x, np.ndarray):
        arr = x  # other subclasses keep their type (one that counts operations, say)
    elif isinstance(x, numbers.Real) and not isinstance(x, (bool, np.generic)):
        arr = np.asarray(_real_to_float(fn, name, x))  # int, float, Fraction: a 0-d float64 array
    elif isinstance(x, (list, tuple, np.generic)):
        try:
            arr = np.asarray(x)
        except ValueError as exc:  # ragged nested lists
            raise TypeError(f"{fn}: argument '{name}' is not a rectangular array of numbers") from exc
    else:
        raise TypeError(f"{fn}: argument '{name}' must be a numpy array of floats, got {type(x).__name__}")
    if arr.dtype.kind in "iu":
        arr = arr.astype(np.float64)
    elif arr.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{fn}: argument '{name}' must have dtype float32 or float64, got {arr.dtype}")
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{fn}: argument '{name}' must have {ndim} dimensions, got shape {arr.shape}")
    if finite and not all_finite(arr):
        index, value = _first_bad(arr)
        raise ValueError(f"{fn}: argument '{name}' contains NaN or infinity (first at index {index}: {value})")
    return arr


def _real_to_float(fn, name, value):
    """float(value) for a Python real number, refusing one too large for a float (2**2000, say)."""
    try:
        return float(value)
    except OverflowError as exc:
        raise ValueError(f"{fn}: argument '{name}' is too large for a float (more than 1.8e308)") from exc


def check_shape(fn, name, x, expected):
    """Check ``x.shape`` against ``expected``, where ``None`` matches any size."""
    ok = x.ndim == len(expected) and all(e is None or e == s for e, s in zip(expected, x.shape))
    if not ok:
        want = "(" + ", ".join("?" if e is None else str(e) for e in expected) + ("," if len(expected) == 1 else "") + ")"
        raise ValueError(f"{fn}: argument '{name}' must have shape {want}, got {x.shape}")


def check_same_shape(fn, name_a, a, name_b, b):
    """Check that two arrays have the same shape, naming both in the error."""
    if a.shape != b.shape:
        raise ValueError(f"{fn}: argument '{name_a}' has shape {a.shape} but '{name_b}' has shape {b.shape}; they must match")


def check_int(fn, name, value, *, minimum=None):
    """Check that ``value`` is an integer (not a bool), at least ``minimum`` and at most 2**63 - 1."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{fn}: argument '{name}' must be an integer, got {type(value).__name__}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{fn}: argument '{name}' must be at least {minimum}, got {value}")
    if abs(int(value)) > INT64_MAX:
        raise ValueError(f"{fn}: argument '{name}' must lie within +-(2**63 - 1), got an integer of {int(value).bit_length()} bits")
    return int(value)


def check_real(fn, name, value, *, low=None, high=None, low_open=False, high_open=False):
    """Check that ``value`` is a finite real number within the given bounds; return it as a float.

    Python and numpy numbers are accepted (booleans are not); a Python integer or
    fraction too large for a float is refused with a ValueError.
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{fn}: argument '{name}' must be a finite real number, got {_shown(value)}")
    v = _real_to_float(fn, name, value)
    if not math.isfinite(v):
        raise TypeError(f"{fn}: argument '{name}' must be a finite real number, got {value!r}")
    too_low = low is not None and (v <= low if low_open else v < low)
    too_high = high is not None and (v >= high if high_open else v > high)
    if too_low or too_high:
        lo = "(-inf" if low is None else ("(" if low_open else "[") + str(low)
        hi = "inf)" if high is None else str(high) + (")" if high_open else "]")
        raise ValueError(f"{fn}: argument '{name}' must lie in {lo}, {hi}, got {value}")
    return v


def _shown(value):
    """type and a short repr of a refused value, for an error message."""
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 40 else text[:37] + '...'}"


def check_bool(fn, name, value):
    """Check that ``value`` is True or False (a numpy bool too); return it as a Python bool."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{fn}: argument '{name}' must be True or False, got {_shown(value)}")
    return bool(value)


def overflow_error(fn, what, dtype):
    """The ValueError for a result whose true value is too large for ``dtype``."""
    return ValueError(f"{fn}: {what} overflows {np.dtype(dtype).name} (its magnitude exceeds {np.finfo(dtype).max:.3g}); "
                      f"scale the inputs down")


def check_rng(fn, name, rng):
    """Check that ``rng`` is a numpy Generator (``np.random.default_rng(seed)``)."""
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"{fn}: argument '{name}' must be a numpy Generator such as np.random.default_rng(0), got {type(rng).__name__}")
    return rng


def check_cache(fn, cache, cache_type):
    """Return ``cache`` if it is a ``cache_type``; refuse another op's cache by name.

    Every forward returns its cache as a small ``typing.NamedTuple`` of its own
    type, whose class attribute ``made_by`` names that forward, so a backward
    handed the wrong cache can say which two functions were mixed up.
    """
    if isinstance(cache, cache_type):
        return cache
    made_by = getattr(type(cache), "made_by", None)
    got = f"a {type(cache).__name__} from {made_by}" if made_by else f"a {type(cache).__name__}"
    raise TypeError(f"{fn}: argument 'cache' must be the {cache_type.__name__} that {cache_type.made_by} returns, got {got}")
