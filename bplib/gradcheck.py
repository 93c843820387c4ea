"""Numerical derivatives and gradient checks (chapter 1).

Every gradient in the book is checked against central differences,
f'(x) ~ (f(x + h) - f(x - h)) / 2h, whose error is O(h^2). Checks run in
float64 and compare with the relative error |a - b| / max(1e-8, |a| + |b|).
"""

import numbers

import numpy as np

from bplib._validate import as_float_array, check_real, check_rng


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
    return np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b))


def numerical_derivative(f, x, h=1e-5):
    """f'(x) ~ (f(x + h) - f(x - h)) / 2h, for a real function of one real variable.

    Parameters: f, a callable from float to float; x, a float; h, the step.
    Returns: a float. Introduced in chapter 1.
    """
    x = check_real("numerical_derivative", "x", x)
    h = check_real("numerical_derivative", "h", h, low=0, low_open=True)
    return (float(f(x + h)) - float(f(x - h))) / (2.0 * h)


def numerical_gradient(f, x, h=1e-5):
    """df/dx_i ~ (f(x + h e_i) - f(x - h e_i)) / 2h for every entry i of x.

    Parameters: f, a callable from an array shaped like x to a float;
    x, an array of any shape (copied to float64, never modified); h, the step.
    Returns: an array the shape of x. Introduced in chapter 1.
    """
    x = as_float_array("numerical_gradient", "x", x).astype(np.float64)  # a copy
    h = check_real("numerical_gradient", "h", h, low=0, low_open=True)
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + h
        f_plus = float(f(x))
        x[i] = old - h
        f_minus = float(f(x))
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
    return numerical_gradient(lambda v: np.sum(np.asarray(f(v), dtype=np.float64) * dout), x, h)


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
    kwargs = {} if kwargs is None else dict(kwargs)
    args = [np.array(a, dtype=np.float64) if isinstance(a, np.ndarray) and a.dtype.kind == "f" else a for a in args]
    wrt = _check_wrt(args, wrt)
    names = tuple(f"arg{i}" for i in wrt) if names is None else tuple(names)
    if len(names) != len(wrt):
        raise ValueError(f"{fn}: 'names' has {len(names)} entries but 'wrt' has {len(wrt)}")
    out, cache = forward(*args, **kwargs)
    scalar_out = np.ndim(out) == 0
    dout = float(rng.standard_normal()) if scalar_out else rng.standard_normal(np.shape(out))
    grads = _as_tuple(backward(dout, cache))
    if len(grads) != len(wrt):
        raise GradientCheckError(f"check_backward: backward returned {len(grads)} gradients, expected {len(wrt)} ({', '.join(names)})")
    errors = {}
    for k, (i, name) in enumerate(zip(wrt, names)):
        errors[name] = _check_one(forward, args, kwargs, i, name, grads[k], dout, h, tol, atol)
    return errors


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

    analytic = np.asarray(analytic, dtype=np.float64)
    if analytic.shape != np.shape(args[i]):
        shape = np.shape(args[i])
        raise GradientCheckError(f"check_backward: gradient of '{name}' has shape {analytic.shape}, but '{name}' has shape {shape}")
    numeric = numerical_gradient_array(f_of_arg, args[i], dout, h)
    rel = _rel_errors(analytic, numeric)
    resolved = np.abs(analytic - numeric) > atol  # the entries whose relative error means something
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
    rows, all_ok = [], True
    for name, pair in pairs.items():
        if not isinstance(pair, tuple) or len(pair) != 2:
            raise TypeError(f"compare: entry '{name}' must be a pair (ours, reference)")
        ours = as_float_array("compare", f"{name} (ours)", pair[0]).astype(np.float64)
        ref = as_float_array("compare", f"{name} (reference)", pair[1]).astype(np.float64)
        if ours.shape != ref.shape:
            raise ValueError(f"compare: '{name}' has shape {ours.shape} but its reference has shape {ref.shape}")
        diff = np.abs(ours - ref)
        rel = _rel_errors(ours, ref)
        ok = bool(np.all((rel <= tol) | (diff <= atol)))
        all_ok &= ok
        max_diff = float(diff.max()) if diff.size else 0.0
        max_rel = float(rel.max()) if rel.size else 0.0
        rows.append((name, str(ours.shape), error_bound(max_diff), error_bound(max_rel), "ok" if ok else "WRONG"))
    header = ("name", "shape", "max abs diff", "rel error", "ok")
    widths = [max(len(str(r[j])) for r in rows + [header]) for j in range(len(header))]
    for r in [header] + rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip())
    return all_ok
