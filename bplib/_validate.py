"""Private input checks shared by every public function of bplib.

Each check raises ``TypeError`` for a wrong type or dtype and ``ValueError``
for a wrong shape or value, with a message that names the calling function,
the argument, what was expected and what was given.
"""

import numbers

import numpy as np

FLOAT_DTYPES = (np.float32, np.float64)


def as_float_array(fn, name, x, *, ndim=None, finite=True):
    """Return ``x`` as a float32 or float64 array, or raise a clear error.

    Python numbers, lists and integer arrays become float64; float32 and
    float64 arrays keep their dtype. Booleans, complex numbers, strings and
    objects are refused, as are NaN and infinity when ``finite`` is true.
    """
    if isinstance(x, np.ndarray):
        arr = x
    elif isinstance(x, (numbers.Real, list, tuple, np.generic)) and not isinstance(x, (bool, str)):
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
    if finite and not np.all(np.isfinite(arr)):
        raise ValueError(f"{fn}: argument '{name}' contains NaN or infinity")
    return arr


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
    """Check that ``value`` is an integer (not a bool), at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{fn}: argument '{name}' must be an integer, got {type(value).__name__}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{fn}: argument '{name}' must be at least {minimum}, got {value}")
    return int(value)


def check_real(fn, name, value, *, low=None, high=None, low_open=False, high_open=False):
    """Check that ``value`` is a finite real number within the given bounds."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value):
        raise TypeError(f"{fn}: argument '{name}' must be a finite real number, got {value!r}")
    too_low = low is not None and (value <= low if low_open else value < low)
    too_high = high is not None and (value >= high if high_open else value > high)
    if too_low or too_high:
        lo = "-inf" if low is None else ("(" if low_open else "[") + str(low)
        hi = "inf" if high is None else str(high) + (")" if high_open else "]")
        raise ValueError(f"{fn}: argument '{name}' must lie in {lo}, {hi}, got {value}")
    return float(value)


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
