"""Numerical derivatives and gradient checks (chapter 1).

Every gradient in the book is checked against central differences,
f'(x) ~ (f(x + h) - f(x - h)) / 2h, whose error is O(h^2). Checks run in
float64 and compare with the relative error |a - b| / max(1e-8, |a| + |b|).
"""

import numbers

import numpy as np

from bplib._validate import all_finite, as_float_array, check_real, check_rng


class GradientCheckError(AssertionError):
    """Raised when an analytic gradient disagrees with the numerical one."""


def rel_error(a, b):
    """max over entries of |a - b| / max(1e-8, |a| + |b|).

    Parameters: a, b, arrays (or numbers) of the same shape. Returns: a float.
    Introduced in chapter 1.
    """
    a = as_float_array("rel_error", "a", a).astype(np.float64)
    b = as_float_array("rel_error", "b", b).astype(np.float64)
    if a.shape != b.shape:
        raise ValueError(f"rel_error: argument 'a' has shape {a.shape} but 'b' has shape {b.shape}; they must match")
    if a.size == 0:
        return 0.0
    return float(np.max(_rel_errors(a, b)))


def _rel_errors(a, b):
    """|a - b| / max(1e-8, |a| + |b|) entry by entry, for finite float64 a and b, without overflow.

    a - b and |a| + |b| can exceed the float range (1e308 and -1e308), so both are
    computed on a / 2 and b / 2, which leaves the ratio unchanged (halving is exact
    above 2^-1021) and halves the floor.
    """
    ha, hb = 0.5 * a, 0.5 * b
    return np.abs(ha - hb) / np.maximum(0.5e-8, np.abs(ha) + np.abs(hb))


def numerical_derivative(f, x, h=1e-5):
    """f'(x) ~ (f(x + h) - f(x - h)) / 2h, for a real function of one real variable.

    Parameters: f, a callable from float to float; x, a float; h, the step.
    Returns: a float. Introduced in chapter 1.
    """
    fn = "numerical_derivative"
    x = check_real(fn, "x", x)
    h = check_real(fn, "h", h, low=0, low_open=True)
    _check_step(fn, x, h, "x")  # refuses an h lost in rounding next to a large x
    return (_value(fn, f, x + h) - _value(fn, f, x - h)) / (2.0 * h)


def _check_step(fn, x, h, where):
    """Refuse a step h that rounding changes: (x + h) - (x - h) must be 2h to within 0.1%."""
    step = (x + h) - (x - h)
    if abs(step - 2.0 * h) > 1e-3 * 2.0 * h:
        raise ValueError(f"{fn}: the step h = {h:g} is too small for {where} = {x:g}: x + h and x - h round to "
                         f"values {step:g} apart instead of {2 * h:g}; use h of about 1e-5 times |x|")


def _value(fn, f, v, what="f"):
    """f(v) as a finite float, or a clear error."""
    out = f(v)
    if np.ndim(out) != 0:
        raise TypeError(f"{fn}: {what} must return a number, got an array of shape {np.shape(out)}")
    out = float(out)
    if not np.isfinite(out):
        raise ValueError(f"{fn}: {what} returned {out} (not finite) at a point moved by h from x")
    return out


def numerical_gradient(f, x, h=1e-5):
    """df/dx_i ~ (f(x + h e_i) - f(x - h e_i)) / 2h for every entry i of x.

    Parameters: f, a callable from an array shaped like x to a float;
    x, an array of any shape (copied to float64, never modified); h, the step.
    Returns: an array the shape of x. Introduced in chapter 1.
    """
    return _numerical_gradient("numerical_gradient", f, x, h)


def _numerical_gradient(fn, f, x, h, what="f", name="x"):
    x = as_float_array(fn, name, x).astype(np.float64)  # a copy
    h = check_real(fn, "h", h, low=0, low_open=True)
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        old = x[i]
        _check_step(fn, old, h, f"{name}{list(i)}")
        x[i] = old + h
        f_plus = _value(fn, f, x, what)
        x[i] = old - h
        f_minus = _value(fn, f, x, what)
        x[i] = old
        grad[i] = (f_plus - f_minus) / (2.0 * h)
    return grad


def numerical_gradient_array(f, x, dout, h=1e-5):
    """d/dx sum(f(x) * dout): the vector-Jacobian product of f at x with dout, numerically.

    Parameters: f, a callable from an array shaped like x to an array shaped like dout;
    x, an array of any shape; dout, the upstream gradient. Returns: an array the shape of x.
    Introduced in chapter 1.
    """
    dout = as_float_array("numerical_gradient_array", "dout", dout).astype(np.float64)
    return _vjp("numerical_gradient_array", f, x, dout, h)


def _vjp(fn, f, x, dout, h, what="f", name="x"):
    """d/dx sum(f(x) * dout) by central differences, refusing an f(x) whose shape is not dout's."""
    def weighted(v):
        out = as_float_array(fn, f"the output of {what}", f(v), finite=False)
        if out.shape != dout.shape:
            raise ValueError(f"{fn}: argument 'dout' has shape {dout.shape} but the output of {what} has shape "
                             f"{out.shape}; they must match")
        return np.sum(out * dout)

    return _numerical_gradient(fn, weighted, x, h, what, name)


def _as_tuple(grads):
    return grads if isinstance(grads, tuple) else (grads,)


def check_backward(forward, backward, args, *, kwargs=None, wrt=None, names=None, rng=None, h=1e-6, tol=1e-6, atol=1e-8):
    """Check a forward/backward pair against central differences with a random upstream gradient.

    Runs ``out, cache = forward(*args, **kwargs)``, draws ``dout`` from a
    standard normal of the shape of ``out`` (a scalar when out is a number),
    and compares ``backward(dout, cache)`` with the numerical gradient of
    ``sum(forward(...)[0] * dout)`` with respect to each argument in ``wrt``.
    An entry passes when its relative error is at most ``tol`` or its
    absolute error at most ``atol`` (a central difference cannot resolve
    gradients much smaller than that).

    Parameters: forward, backward, the pair; args, a tuple of positional arguments
    (arrays are copied to float64); kwargs, keyword arguments of forward; wrt, the
    indices of args that backward returns gradients for, in order (default: all);
    names, a name for each index of wrt; rng, a numpy Generator; h, the step of the
    central differences, 1e-6 by default: ten times smaller than numerical_gradient's,
    because the outputs of a pair are often more strongly curved than a function of order
    one (a loss near a prediction of 0.01, batch norm), where truncation error dominates;
    for a sum over many thousands of outputs, where round-off dominates, pass h=1e-5.
    Chapter 1 measures both cases.
    Returns: a dict from name to the largest relative error over all entries (0.0 for an
    empty argument). An entry within ``atol`` passes even when its relative error is
    large, which happens where the true gradient is near zero, so a passing check may
    report an error above ``tol``. Raises GradientCheckError naming the argument, the worst index, both values and
    the error. Introduced in chapter 1.
    """
    fn = "check_backward"
    rng = check_rng(fn, "rng", np.random.default_rng(0) if rng is None else rng)
    h = check_real(fn, "h", h, low=0, low_open=True)
    tol, atol = check_real(fn, "tol", tol, low=0), check_real(fn, "atol", atol, low=0)
    for name, f in (("forward", forward), ("backward", backward)):
        if not callable(f):
            raise TypeError(f"{fn}: argument '{name}' must be a function, got {type(f).__name__}")
    if kwargs is not None and not isinstance(kwargs, dict):
        raise TypeError(f"{fn}: argument 'kwargs' must be a dict of keyword arguments, got {type(kwargs).__name__}")
    kwargs = {} if kwargs is None else dict(kwargs)
    args = _float64_args(args)
    wrt = _check_wrt(args, wrt)
    names = _check_names(wrt, names)
    result = forward(*args, **kwargs)
    if not isinstance(result, tuple) or len(result) != 2:
        raise TypeError(f"{fn}: forward must return a pair (out, cache), got {type(result).__name__}")
    out, cache = result
    scalar_out = np.ndim(out) == 0
    dout = float(rng.standard_normal()) if scalar_out else rng.standard_normal(np.shape(out))
    grads = _as_tuple(backward(dout, cache))
    if len(grads) != len(wrt):
        raise GradientCheckError(f"check_backward: backward returned {len(grads)} gradients, expected {len(wrt)} ({', '.join(names)})")
    errors = {}
    for k, (i, name) in enumerate(zip(wrt, names)):
        errors[name] = _check_one(forward, args, kwargs, i, name, grads[k], dout, h, tol, atol)
    return errors


def _float64_args(args):
    """The arguments as a list, float arrays copied to plain float64 ones (a masked array is refused)."""
    if not isinstance(args, (tuple, list)):
        raise TypeError(f"check_backward: argument 'args' must be a tuple of positional arguments, got {type(args).__name__}")
    out = []
    for i, a in enumerate(args):
        if isinstance(a, np.ma.MaskedArray):
            raise TypeError(f"check_backward: args[{i}] is a masked array; its mask would be ignored")
        out.append(np.array(a, dtype=np.float64) if isinstance(a, np.ndarray) and a.dtype.kind == "f" else a)
    return out


def _check_names(wrt, names):
    if names is None:
        return tuple(f"arg{i}" for i in wrt)
    if not isinstance(names, (tuple, list)) or not all(isinstance(n, str) for n in names):
        raise TypeError(f"check_backward: argument 'names' must be a tuple of strings, got {names!r}")
    if len(names) != len(wrt):
        raise ValueError(f"check_backward: 'names' has {len(names)} entries but 'wrt' has {len(wrt)}")
    return tuple(names)


def _check_wrt(args, wrt):
    """The indices of the arguments to check, each an integer in [0, len(args))."""
    wrt = tuple(range(len(args))) if wrt is None else tuple(wrt)
    for i in wrt:
        if isinstance(i, bool) or not isinstance(i, numbers.Integral) or not 0 <= i < len(args):
            raise ValueError(f"check_backward: argument 'wrt' must hold indices of 'args' in [0, {len(args)}), got {i!r}")
    return wrt


def _check_one(forward, args, kwargs, i, name, analytic, dout, h, tol, atol):
    def f_of_arg(v):
        local = list(args)
        local[i] = v
        return forward(*local, **kwargs)[0]

    analytic = np.asarray(analytic)
    if analytic.dtype.kind not in "iuf":
        raise GradientCheckError(f"check_backward: gradient of '{name}' must hold real numbers, got dtype {analytic.dtype}")
    analytic = analytic.astype(np.float64)
    if analytic.shape != np.shape(args[i]):
        shape = np.shape(args[i])
        raise GradientCheckError(f"check_backward: gradient of '{name}' has shape {analytic.shape}, but '{name}' has shape {shape}")
    if not all_finite(analytic):
        bad = tuple(int(j) for j in np.unravel_index(int(np.argmin(np.isfinite(analytic))), analytic.shape))
        raise GradientCheckError(f"check_backward: gradient of '{name}' is not finite at index {bad}: {analytic[bad]}")
    numeric = _vjp("check_backward", f_of_arg, args[i], np.asarray(dout, dtype=np.float64), h, "forward", name)
    rel = _rel_errors(analytic, numeric)
    resolved = np.abs(0.5 * analytic - 0.5 * numeric) > 0.5 * atol  # the entries whose relative error means something
    bad = resolved & (rel > tol)
    if np.any(bad):
        worst = np.unravel_index(np.argmax(np.where(bad, rel, -1.0)), rel.shape)
        raise GradientCheckError(
            f"check_backward: gradient of '{name}' is wrong at index {tuple(int(j) for j in worst)}: "
            f"analytic {analytic[worst]:.10g}, numerical {numeric[worst]:.10g}, "
            f"relative error {rel[worst]:.3g} > tolerance {tol:g} ({int(bad.sum())} of {bad.size} entries fail)"
        )
    return float(np.max(rel, initial=0.0))


def error_bound(e):
    """The power of ten just above a non-negative error, as text: 3.2e-11 -> '< 1e-10'.

    Printing the bound instead of the digits keeps a notebook's output the
    same on machines whose floating-point rounding differs. Returns '0' for 0.
    Introduced in chapter 1.
    """
    e = check_real("error_bound", "e", e, low=0)
    if e == 0:
        return "0"
    return f"< 1e{int(np.floor(np.log10(e))) + 1:+03d}"


def compare(pairs, tol=1e-6, atol=1e-8):
    """Print a table comparing our gradients with reference ones; return True if all match.

    Parameters: pairs, a dict from name to (ours, reference), arrays of equal shape;
    tol, atol, as in check_backward. Each row gives the name, the shape, bounds on the
    largest absolute and relative errors (error_bound), and ok.
    Returns: True when every row is ok. Introduced in chapter 1.
    """
    if not isinstance(pairs, dict) or not pairs:
        raise TypeError("compare: argument 'pairs' must be a non-empty dict from name to (ours, reference)")
    tol, atol = check_real("compare", "tol", tol, low=0), check_real("compare", "atol", atol, low=0)
    rows, all_ok = [], True
    for name, pair in pairs.items():
        if not isinstance(pair, tuple) or len(pair) != 2:
            raise TypeError(f"compare: entry '{name}' must be a pair (ours, reference)")
        ours = as_float_array("compare", f"{name} (ours)", pair[0]).astype(np.float64)
        ref = as_float_array("compare", f"{name} (reference)", pair[1]).astype(np.float64)
        if ours.shape != ref.shape:
            raise ValueError(f"compare: '{name}' has shape {ours.shape} but its reference has shape {ref.shape}")
        half_diff = np.abs(0.5 * ours - 0.5 * ref)  # |ours - ref| / 2, which cannot overflow
        rel = _rel_errors(ours, ref)
        ok = bool(np.all((rel <= tol) | (half_diff <= 0.5 * atol)))
        all_ok &= ok
        max_diff = 2.0 * float(half_diff.max()) if half_diff.size else 0.0  # inf when beyond 1.8e308
        max_rel = float(rel.max()) if rel.size else 0.0
        shown = error_bound(max_diff) if np.isfinite(max_diff) else "> 1.8e+308"
        rows.append((name, str(ours.shape), shown, error_bound(max_rel), "ok" if ok else "WRONG"))
    header = ("name", "shape", "max abs diff", "rel error", "ok")
    widths = [max(len(str(r[j])) for r in rows + [header]) for j in range(len(header))]
    for r in [header] + rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip())
    return all_ok
