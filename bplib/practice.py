"""Checkers for the practice notebooks: the reader writes a backward pass, a checker says what is wrong.

Each exercise of ``chapters/practice/`` asks for one function: a backward pass, or a
rule that plugs into bplib's own machinery (the local derivatives of a ``Value`` op,
a topological order, a vector-Jacobian rule or a curvature rule of the ``Tape``).
Its checker, ``check_<name>(fn)``, runs ``fn`` on random inputs of several shapes
(odd sizes; every stride and padding of a convolution), compares each gradient it
returns with bplib's and with central differences, and prints one line per
gradient: ok, or wrong with the relative error, the worst index and both values, a
shape mismatch stated as shapes, and, where the checker recognises it, the likely
mistake (a missing transpose, a forgotten sum over the batch, a wrong sign, ...).
It returns a ``CheckResult``, true only when everything passed. A function that
still raises ``NotImplementedError`` is reported as not done yet; nothing is raised,
so a starter notebook runs from top to bottom.

The module reads in three parts: the shared core (``Case``, ``Exercise`` and
``_check``, which runs, compares and diagnoses); the exercises, chapter by chapter,
each a list of cases, the mistakes it can name (as wrong implementations with the
reader's signature) and a public checker; and the op of the chapter 10 exercise.
A leaf module: it may import every op module, and nothing in bplib imports it.
"""

import copy
import functools
import itertools
import math
import numbers
import os
import textwrap
import traceback
from typing import Any, Callable, NamedTuple

import numpy as np

from bplib import activations, autodiff, conv, linear, losses, norm, optim, rnn
from bplib._validate import as_float_array, check_int, check_shape
from bplib.autodiff import Tape
from bplib.gradcheck import error_bound, numerical_gradient
from bplib.scalar import Value

# --------------------------------------------------------------------------------------
# The shared core: cases, exercises, tolerances, the result


class Tolerance(NamedTuple):
    """An entry passes when |a - b| <= rtol (|a| + |b|) or |a - b| <= max(rel_atol * scale, abs_atol),
    where scale is the largest |entry| of the reference: tiny entries are compared absolutely."""

    rtol: float
    rel_atol: float
    abs_atol: float


# Against bplib: rounding-level agreement. Against central differences: what a central
# difference can resolve (about 1e-8 absolutely, as in gradcheck). Match: how close a
# wrong answer must be to a known mistake for the checker to name it.
TOLERANCES = {
    np.dtype(np.float64): {"bplib": Tolerance(1e-7, 1e-9, 1e-15), "numeric": Tolerance(1e-5, 1e-7, 1e-8),
                           "match": Tolerance(1e-5, 1e-7, 1e-12)},
    np.dtype(np.float32): {"bplib": Tolerance(1e-3, 1e-4, 1e-9), "numeric": Tolerance(1e-3, 1e-4, 1e-8),
                           "match": Tolerance(1e-2, 1e-3, 1e-8)},
}
WIDTH = 78  # characters in a line of the printed report (the HTML output column shows about 80)


class Case(NamedTuple):
    """One set of inputs: what the reader's function is called with, and the answers to compare with."""

    label: str  # shapes and options, for the report
    args: tuple  # the arguments of the reader's function (deep-copied for every call)
    expected: dict  # gradient name -> bplib's answer (float64)
    numeric: dict  # gradient name -> central differences (float64); empty where none apply
    n: Any = None  # the batch size N, for the 1/N diagnoses
    upstream: Any = None  # the upstream gradient, for the "passed through" diagnosis


class Mistake(NamedTuple):
    """A usual mistake: the diagnosis to print, and a wrong implementation with the reader's signature."""

    label: str
    impl: Callable


class Exercise(NamedTuple):
    """What a checker needs: how to make the cases, how to call the reader's function, which mistakes to name."""

    name: str
    signature: str  # what the reader writes, e.g. "sigmoid_backward(dout, cache) -> dx"
    params: tuple  # the names of fn's parameters, for reports of arguments changed in place
    make_cases: Callable  # (rng, dtype) -> list of Case
    mistakes: tuple = ()
    run: Any = None  # (exercise, fn, case) -> (gradients by name, arguments changed); default _call
    outputs: tuple = ()  # the names of fn's return values, in order, for the default run
    reference: str = "bplib"  # what the expected values come from


class Failure(NamedTuple):
    """Why one gradient (or the call itself, gradient 'call') failed, in which case, and the likely mistake."""

    gradient: str
    case: str
    message: str
    mistake: Any  # the diagnosis, or None when the checker does not recognise the error


class CheckResult:
    """The outcome of a check: true only when every gradient matched in every case.

    Attributes: name, the exercise; status, 'passed', 'failed' or 'not done';
    failures, a dict from gradient name (or 'call', or 'arguments') to a Failure;
    report, the text that the checker printed. In a notebook the result shows
    nothing more (the report is already printed); ``repr`` gives one line.
    """

    def __init__(self, name, status, failures, report):
        self.name, self.status, self.failures, self.report = name, status, dict(failures), report

    def __bool__(self):
        return self.status == "passed"

    def __repr__(self):
        return f"CheckResult({self.name!r}, {self.status!r})"

    def _ipython_display_(self):
        pass  # the report was printed by the check; a second copy would add nothing


class _Refused(Exception):
    """The reader's function broke the contract (a wrong number of values, a wrong type, an order with a repeat...)."""


# --------------------------------------------------------------------------------------
# Running the reader's function


def _as_tuple(x):
    return x if isinstance(x, tuple) else (x,)


def _array(name, value):
    """The reader's value as an array of numbers, or a _Refused that says what it is instead."""
    if value is None:
        raise _Refused(f"{name} is None: is a return statement missing?")
    if isinstance(value, Value):
        raise _Refused(f"{name} is a Value; return its .data, a number")
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError) as exc:
        raise _Refused(f"{name} is not an array of numbers ({type(value).__name__})") from exc
    if arr.dtype.kind not in "fiub":
        raise _Refused(f"{name} is not an array of numbers (dtype {arr.dtype})")
    return arr


def _named_outputs(ex, result):
    """The reader's return value as a dict from output name to array, or a _Refused."""
    names = ex.outputs
    if len(names) == 1:
        values = result if isinstance(result, tuple) and len(result) == 1 else (result,)
        if isinstance(result, tuple) and len(result) != 1:
            raise _Refused(f"returned a tuple of {len(result)} values; expected one array, {names[0]}")
    else:
        if not isinstance(result, (tuple, list)):
            raise _Refused(f"returned {type(result).__name__}; expected a tuple of {len(names)} arrays ({', '.join(names)})")
        values = tuple(result)
        if len(values) != len(names):
            raise _Refused(f"returned {len(values)} values; expected {len(names)}: ({', '.join(names)})")
    return {name: _array(name, v) for name, v in zip(names, values)}


def _changed(path, before, after):
    """The paths of the arrays that differ between ``before`` and ``after``: what was changed in place."""
    if isinstance(before, np.ndarray):
        same = (isinstance(after, np.ndarray) and before.shape == after.shape
                and np.array_equal(before, after, equal_nan=before.dtype.kind in "fc"))
        return [] if same else [path]
    if hasattr(before, "_fields"):  # a NamedTuple cache: name its fields
        return [p for f in before._fields for p in _changed(f"{path}.{f}", getattr(before, f), getattr(after, f, None))]
    if isinstance(before, (list, tuple)) and isinstance(after, (list, tuple)):
        if len(before) != len(after):
            return [path]
        return [p for i, (b, a) in enumerate(zip(before, after)) for p in _changed(f"{path}[{i}]", b, a)]
    if isinstance(before, dict) and isinstance(after, dict):
        return [p for k in before for p in _changed(f"{path}[{k!r}]", before[k], after.get(k))]
    return []


def _call(ex, fn, case):
    """fn(*case.args) on a copy of the arguments: (outputs by name, the arguments it changed in place)."""
    args = copy.deepcopy(case.args)
    result = fn(*args)
    changed = [p for name, b, a in zip(ex.params, case.args, args) for p in _changed(name, b, a)]
    return _named_outputs(ex, result), changed


def _run(ex, fn, case):
    return (ex.run or _call)(ex, fn, case)


# --------------------------------------------------------------------------------------
# Comparing


def _errors(yours, ref, tol):
    """Per-entry error |a - b| / max(|a| + |b|, floor): an entry passes when its error is at most tol.rtol.

    floor = max(rel_atol * max|ref|, abs_atol) / rtol, so an entry within that absolute
    difference passes too. Non-finite entries of ``yours`` have an infinite error.
    """
    yours, ref = yours.astype(np.float64), ref.astype(np.float64)
    scale = float(np.max(np.abs(ref))) if ref.size else 0.0
    floor = max(tol.rel_atol * scale, tol.abs_atol) / tol.rtol
    with np.errstate(invalid="ignore", over="ignore"):
        err = np.abs(yours - ref) / np.maximum(np.abs(yours) + np.abs(ref), floor)
    return np.where(np.isfinite(yours), err, np.inf)


def _close(yours, ref, tol):
    """Whether ``yours`` matches ``ref`` within tol; NaN and infinities must sit at the same places."""
    if yours.shape != ref.shape:
        return False
    bad = ~np.isfinite(yours)
    if np.any(bad):
        if not np.array_equal(bad, ~np.isfinite(ref)) or not np.array_equal(np.isnan(yours), np.isnan(ref)):
            return False
        yours, ref = np.where(bad, 0.0, yours), np.where(bad, 0.0, ref)
    return yours.size == 0 or float(np.max(_errors(yours, ref, tol))) <= tol.rtol


def _worst(err):
    """(largest error, its index as a tuple of ints); (0.0, ()) for an empty array."""
    if err.size == 0:
        return 0.0, ()
    i = np.unravel_index(int(np.argmax(err)), err.shape)
    return float(err[i]), tuple(int(j) for j in i)


def _compare(name, yours, case, tols, reference):
    """(ok, error against the reference, message when wrong) for one gradient in one case."""
    ref = case.expected[name]
    if yours.shape != ref.shape:
        return False, math.inf, f"shape {yours.shape}, expected {ref.shape}"
    err_ref = _errors(yours, ref, tols["bplib"])
    worst_ref, at = _worst(err_ref)
    ok = worst_ref <= tols["bplib"].rtol
    num = case.numeric.get(name)
    if num is not None:
        worst_num, at_num = _worst(_errors(yours, num, tols["numeric"]))
        ok = ok and worst_num <= tols["numeric"].rtol
        at = at if worst_ref > tols["bplib"].rtol else at_num
    if ok:
        return True, worst_ref, ""
    values = f"yours {_fmt(yours[at])}, {reference} {_fmt(ref[at])}"
    if num is not None:
        values += f", central differences {_fmt(num[at])}"
    where = f" at index {at}" if at else ""
    return False, worst_ref, f"rel error {_fmt(worst_ref, 2)}{where}: {values}"


def _fmt(x, digits=4):
    x = float(x)
    return f"{x:.{digits}g}" if math.isfinite(x) else str(x)


# --------------------------------------------------------------------------------------
# Diagnosing


def _diagnose(ex, name, yours, case, tols, candidates):
    """The likely mistake behind a wrong gradient: a known mistake of the exercise, else a generic one."""
    for label, outputs in candidates():
        if outputs is not None and name in outputs and _close(yours, outputs[name].astype(np.float64), tols["match"]):
            return label
    return _generic(yours, case.expected[name], case, tols["match"])


def _generic(yours, expected, case, tol):
    """The mistakes any gradient can have: a transpose, a missing sum, a sign, 1/N, a constant factor."""
    y = yours.astype(np.float64)
    if y.shape != expected.shape:
        if y.ndim == 2 and y.shape == expected.shape[::-1] and _close(y.T, expected, tol):
            return "a missing transpose: yours is the transpose of the right gradient"
        for axes in _extra_axes(y.shape, expected.shape):
            if _close(y.sum(axis=axes), expected, tol):
                what = "over the batch" if 0 in axes and case.n and y.shape[0] == case.n else f"over axes {axes}"
                return (f"a forgotten sum {what}: summed over axes {axes} it is right; a parameter used by every "
                        f"example (and every position) gets the sum of their gradients")
        return None
    if not np.any(y) and np.any(expected):
        return "all zeros: nothing reached this gradient"
    if _close(-y, expected, tol):
        return "a wrong sign"
    n = case.n
    if n and n > 1 and _close(y / n, expected, tol):
        return f"a missing 1/N (N = {n}): the loss is the mean over the batch"
    if n and n > 1 and _close(y * n, expected, tol):
        return f"an extra 1/N (N = {n}): it is already in the upstream gradient (or counted twice)"
    if y.ndim == 2 and y.shape[0] == y.shape[1] and _close(y.T, expected, tol):
        return "a missing transpose: yours is the transpose of the right gradient"
    up = case.upstream
    if isinstance(up, np.ndarray) and up.shape == y.shape and _close(y, up.astype(np.float64), tol):
        return "the upstream gradient passed through unchanged: the local derivative is missing"
    denom = float(np.sum(expected * expected))
    c = float(np.sum(y * expected)) / denom if denom > 0 else 0.0
    if c and abs(c - 1.0) > 1e-3 and _close(y, c * expected, tol):
        return f"off by a constant factor {c:.4g}"
    return None


def _extra_axes(shape, target):
    """Every set of axes of ``shape`` whose removal leaves ``target``."""
    k = len(shape) - len(target)
    if k <= 0:
        return []
    return [axes for axes in itertools.combinations(range(len(shape)), k)
            if tuple(s for i, s in enumerate(shape) if i not in axes) == tuple(target)]


def _candidates(ex, case):
    """A function that yields (label, outputs or None) for each known mistake of the exercise on this case."""
    @functools.cache
    def outputs(i):
        try:
            return _run(ex, ex.mistakes[i].impl, case)[0]
        except Exception:  # noqa: BLE001 - a mistake that raises has no outputs to match
            return None

    return lambda: ((m.label, outputs(i)) for i, m in enumerate(ex.mistakes))


def _where(exc):
    """' at <line> (line n of f)' for the innermost frame of the reader's own code, or ''."""
    own = [f for f in traceback.extract_tb(exc.__traceback__)
           if f.filename != __file__ and f"{os.sep}numpy{os.sep}" not in f.filename and f"{os.sep}bplib{os.sep}" not in f.filename]
    if not own:
        return ""
    f = own[-1]
    return f" at `{f.line.strip()}` (line {f.lineno} of {f.name})" if f.line else f" in {f.name}"


def _diagnose_error(ex, exc, case):
    """The likely mistake behind an exception: a known mistake that raises the same, or a known cause."""
    if isinstance(exc, RecursionError):
        return ("Python's recursion limit (about 1000 nested calls) was reached: "
                "use a loop with an explicit stack instead of recursion")
    for m in ex.mistakes:
        try:
            _run(ex, m.impl, case)
        except Exception as other:  # noqa: BLE001
            if type(other) is type(exc) and str(other) == str(exc):
                return m.label
    return None


# --------------------------------------------------------------------------------------
# The check itself


def _check(ex, fn, dtype, seed, caller):
    """Run fn on every case, compare, diagnose, print the report; return a CheckResult."""
    fn, dtype, seed = _validate(caller, fn, dtype, seed)
    cases, tols = _cases(ex.name, dtype.name, seed), TOLERANCES[dtype]
    worst, failures = {}, {}
    for k, case in enumerate(cases):
        where = f"case {k + 1} of {len(cases)} ({case.label})"
        try:
            got, changed = _run(ex, fn, case)
        except NotImplementedError:
            return _finish(ex, "not done", {}, {}, cases, dtype)
        except _Refused as exc:
            failures["call"] = Failure("call", where, str(exc), None)
            break
        except Exception as exc:  # noqa: BLE001 - the reader's error is reported, not raised
            message = f"raised {type(exc).__name__}{_where(exc)}: {exc}"
            failures["call"] = Failure("call", where, message, _diagnose_error(ex, exc, case))
            break
        if changed and "arguments" not in failures:
            message = f"changed {', '.join(changed)} in place; {ex.name} must leave its arguments as they were"
            failures["arguments"] = Failure("arguments", where, message, "mutating an input")
        for name in case.expected:
            ok, err, message = _compare(name, got[name], case, tols, ex.reference) if name in got else (
                False, math.inf, "missing")
            worst[name] = max(worst.get(name, 0.0), err)
            if not ok and name not in failures:
                mistake = _diagnose(ex, name, got[name], case, tols, _candidates(ex, case)) if name in got else None
                failures[name] = Failure(name, where, message, mistake)
    return _finish(ex, "failed" if failures else "passed", worst, failures, cases, dtype)


def _finish(ex, status, worst, failures, cases, dtype):
    report = _report(ex, status, worst, failures, cases, dtype)
    print(report)
    return CheckResult(ex.name, status, failures, report)


def _report(ex, status, worst, failures, cases, dtype):
    """The printed report: a verdict line, then one line (or a few) per gradient."""
    if status == "not done":
        return textwrap.fill(f"{ex.name}: not done yet (it still raises NotImplementedError). Write {ex.signature} "
                             "in the cell above, run that cell, then run this one again.", WIDTH, subsequent_indent="  ")
    lines = [f"{ex.name}: {'passed' if status == 'passed' else 'WRONG'} ({len(cases)} cases, {dtype.name})"]
    numeric = any(c.numeric for c in cases)
    also = "; agrees with central differences" if numeric else ""
    said = set()  # a likely mistake is spelled out once, then referred to
    for f in (failures[k] for k in ("call", "arguments") if k in failures):
        lines += _failure_lines(f, "  WRONG", said)
    for name, err in worst.items():
        if name in failures:
            lines += _failure_lines(failures[name], f"  {name:8s} WRONG", said)
        else:
            lines.append(f"  {name:8s} ok     error {error_bound(err)} vs {ex.reference}{also}")
    return "\n".join(lines)


def _failure_lines(f, head, said):
    lines = _wrap(f"{head} in {f.case}:", "") + _wrap(f.message, "      ")
    if f.mistake and f.gradient != "arguments":
        lines += _wrap("likely mistake: " + ("the same as above" if f.mistake in said else f.mistake), "      ")
        said.add(f.mistake)
    return lines


def _wrap(text, indent):
    more = indent + "  " if indent else "      "
    return textwrap.wrap(text, WIDTH, initial_indent=indent, subsequent_indent=more, break_on_hyphens=False)


def _validate(caller, fn, dtype, seed):
    if not callable(fn):
        raise TypeError(f"{caller}: argument 'fn' must be a function, got {type(fn).__name__}")
    try:
        dt = None if dtype is None else np.dtype(dtype)  # np.dtype(None) would be float64
    except TypeError:
        dt = None
    if dt not in TOLERANCES:
        raise TypeError(f"{caller}: argument 'dtype' must be np.float64 or np.float32, got {dtype!r}")
    return fn, dt, check_int(caller, "seed", seed, minimum=0)


EXERCISES = {}  # name -> Exercise, filled in below


@functools.cache
def _cases(name, dtype_name, seed):
    """The cases of an exercise, made once per (dtype, seed) and shared by every check."""
    return tuple(EXERCISES[name].make_cases(np.random.default_rng(seed), np.dtype(dtype_name)))


def _register(ex):
    EXERCISES[ex.name] = ex
    return ex


# --------------------------------------------------------------------------------------
# Cases of forward/backward pairs: the reader writes backward(*douts, cache)


def _in_dtype(a, dtype):
    """A float array rounded to dtype (other arguments unchanged), so every case is exact in both dtypes."""
    return a.astype(dtype) if isinstance(a, np.ndarray) and a.dtype.kind == "f" else a


def _f64(a):
    return a.astype(np.float64) if isinstance(a, np.ndarray) and a.dtype.kind == "f" else a


def _outs(forward, args, kwargs):
    out, cache = forward(*args, **kwargs)
    return _as_tuple(out), cache


def _numeric_vjp(forward, args, i, douts, kwargs):
    """d/d args[i] of sum_k <out_k, dout_k>, by central differences, in float64."""
    def f(v):
        outs = _outs(forward, args[:i] + (v,) + args[i + 1:], kwargs)[0]
        return sum(float(np.sum(np.asarray(o) * d)) for o, d in zip(outs, douts))

    return numerical_gradient(f, args[i])


def _pair_case(rng, dtype, label, forward, backward, inputs, names, *, wrt=None, kwargs=None, n=None, numeric_forward=None):
    """One case of a pair: the reader gets (*douts, cache) with the cache of ``forward`` in ``dtype``.

    ``inputs`` are the forward's positional arguments; ``names`` the names of the
    gradients backward returns, for the arguments at the indices ``wrt`` (default: all).
    """
    kwargs = kwargs or {}
    wrt = tuple(range(len(names))) if wrt is None else wrt
    x64 = tuple(_f64(_in_dtype(a, dtype)) for a in inputs)
    outs, cache64 = _outs(forward, x64, kwargs)
    douts = tuple(float(rng.uniform(0.5, 2.0)) if np.ndim(o) == 0 else rng.standard_normal(np.shape(o)) for o in outs)
    douts = tuple(d if isinstance(d, float) else _f64(_in_dtype(d, dtype)) for d in douts)
    expected = dict(zip(names, (np.asarray(g, dtype=np.float64) for g in _as_tuple(backward(*douts, cache64)))))
    numeric = {name: _numeric_vjp(numeric_forward or forward, x64, i, douts, kwargs) for name, i in zip(names, wrt)}
    cache = _outs(forward, tuple(_in_dtype(a, dtype) for a in x64), kwargs)[1]
    args = tuple(d if isinstance(d, float) else _in_dtype(d, dtype) for d in douts) + (cache,)
    upstream = douts[0] if len(douts) == 1 and isinstance(douts[0], np.ndarray) else None
    return Case(label, args, expected, numeric, n, upstream)


def _shape_text(**arrays):
    return ", ".join(f"{k} {tuple(v)}" for k, v in arrays.items())


# --------------------------------------------------------------------------------------
# Chapter 1: activations and the binary cross-entropy with logits

_ELEMENTWISE_SHAPES = ((1,), (7,), (3, 5), (2, 3, 5))


def _elementwise_cases(forward, backward, draw):
    def make(rng, dtype):
        return [_pair_case(rng, dtype, f"x {s}", forward, backward, (draw(rng, s),), ("dx",)) for s in _ELEMENTWISE_SHAPES]
    return make


def _relu_draw(rng, shape):
    return rng.choice([-1.0, 1.0], shape) * rng.uniform(0.05, 3.0, shape)  # away from the kink at 0


def _normal(scale):
    return lambda rng, shape: scale * rng.standard_normal(shape)


_register(Exercise(
    "sigmoid_backward", "sigmoid_backward(dout, cache) -> dx", ("dout", "cache"),
    _elementwise_cases(activations.sigmoid_forward, activations.sigmoid_backward, _normal(2.0)),
    (Mistake("sigma instead of sigma': the derivative is out (1 - out), not out", lambda d, c: d * c.out),
     Mistake("sigma'(out): the cache holds the output out = sigma(x), so sigma'(x) = out (1 - out); "
             "applying sigma' to out uses the wrong cached value", lambda d, c: d * activations.sigmoid_prime(c.out)),
     Mistake("dout is not multiplied in: the chain rule gives dx = dout * sigma'(x)", lambda d, c: c.out * (1 - c.out))),
    outputs=("dx",)))

_register(Exercise(
    "tanh_backward", "tanh_backward(dout, cache) -> dx", ("dout", "cache"),
    _elementwise_cases(activations.tanh_forward, activations.tanh_backward, _normal(1.5)),
    (Mistake("tanh instead of tanh': the derivative is 1 - out^2, not out", lambda d, c: d * c.out),
     Mistake("tanh'(out) = 1 - tanh(out)^2: the cache holds the output out = tanh(x), so tanh'(x) = 1 - out^2; "
             "the wrong cached value", lambda d, c: d * (1 - np.tanh(c.out) ** 2)),
     Mistake("1 - out: the square is missing, tanh'(x) = 1 - out^2", lambda d, c: d * (1 - c.out)),
     Mistake("out (1 - out), the sigmoid's derivative: tanh'(x) = 1 - out^2", lambda d, c: d * c.out * (1 - c.out))),
    outputs=("dx",)))

_register(Exercise(
    "relu_backward", "relu_backward(dout, cache) -> dx", ("dout", "cache"),
    _elementwise_cases(activations.relu_forward, activations.relu_backward, _relu_draw),
    (Mistake("multiplied by relu(x), the output, instead of by relu'(x), which is 1 where x > 0 and 0 elsewhere",
             lambda d, c: d * np.maximum(c.x, 0)),
     Mistake("the mask is reversed: the gradient passes where x > 0, not where x < 0",
             lambda d, c: np.where(c.x < 0, d, 0.0))),
    outputs=("dx",)))


def _bce_cases(rng, dtype):
    cases = []
    for shape, scale in (((1,), 2.0), ((5,), 2.0), ((4, 3), 2.0), ((3, 2, 3), 2.0), ((6,), 15.0)):
        z, t = scale * rng.standard_normal(shape), rng.random(shape)
        cases.append(_pair_case(rng, dtype, f"z {shape}" + (", large logits" if scale > 2 else ""),
                                losses.binary_cross_entropy_with_logits_forward,
                                losses.binary_cross_entropy_with_logits_backward, (z, t), ("dz",), wrt=(0,), n=shape[0]))
    return cases


def _sig(z):
    return activations.sigmoid(z)


_register(Exercise(
    "bce_with_logits_backward", "bce_with_logits_backward(dloss, cache) -> dz", ("dloss", "cache"), _bce_cases,
    (Mistake("dloss is not multiplied in: dz = dloss (sigma(z) - t) / N", lambda dl, c: (_sig(c.z) - c.t) / c.z.shape[0]),
     Mistake("(sigma(z) - t) sigma'(z): the factor sigma'(z) cancels against the derivative of the log, "
             "which is the point of the logits form",
             lambda dl, c: dl * (_sig(c.z) - c.t) * activations.sigmoid_prime(c.z) / c.z.shape[0]),
     Mistake("divided by the number of entries: the loss divides by the batch size N = z.shape[0] only",
             lambda dl, c: dl * (_sig(c.z) - c.t) / c.z.size)),
    outputs=("dz",)))


def check_sigmoid_backward(fn, *, dtype=np.float64, seed=0):
    """dx = dout * out * (1 - out): check the reader's sigmoid_backward(dout, cache).

    Parameters: fn, called as fn(dout, cache) with cache from activations.sigmoid_forward
    (cache.out, the shape of x); dtype, np.float64 or np.float32 (the inputs' type, and
    the tolerance); seed, an integer >= 0 that picks the random inputs.
    Returns: a CheckResult, true only when every case passed; the report is printed.
    Exercise of chapter 1.
    """
    return _check(EXERCISES["sigmoid_backward"], fn, dtype, seed, "check_sigmoid_backward")


def check_tanh_backward(fn, *, dtype=np.float64, seed=0):
    """dx = dout * (1 - out^2): check the reader's tanh_backward(dout, cache).

    Parameters: fn, called as fn(dout, cache) with cache from activations.tanh_forward
    (cache.out); dtype, np.float64 or np.float32; seed, an integer >= 0.
    Returns: a CheckResult, true only when every case passed. Exercise of chapter 1.
    """
    return _check(EXERCISES["tanh_backward"], fn, dtype, seed, "check_tanh_backward")


def check_relu_backward(fn, *, dtype=np.float64, seed=0):
    """dx = dout where x > 0, else 0: check the reader's relu_backward(dout, cache).

    Parameters: fn, called as fn(dout, cache) with cache from activations.relu_forward
    (cache.x; no entry is within 0.05 of the kink); dtype, np.float64 or np.float32;
    seed, an integer >= 0. Returns: a CheckResult. Exercise of chapter 1.
    """
    return _check(EXERCISES["relu_backward"], fn, dtype, seed, "check_relu_backward")


def check_bce_with_logits_backward(fn, *, dtype=np.float64, seed=0):
    """dz = dloss (sigma(z) - t) / N: check the reader's bce_with_logits_backward(dloss, cache).

    Parameters: fn, called as fn(dloss, cache) with dloss a float and cache from
    losses.binary_cross_entropy_with_logits_forward (cache.z, cache.t, of shape (N, ...));
    dtype, np.float64 or np.float32; seed, an integer >= 0.
    Returns: a CheckResult. Exercise of chapter 1.
    """
    return _check(EXERCISES["bce_with_logits_backward"], fn, dtype, seed, "check_bce_with_logits_backward")


# --------------------------------------------------------------------------------------
# Chapter 2: the local derivatives of Value's ops, and the topological order
#
# The reader's rule replaces the local derivatives that Value stored at every node of
# one op; then the real Value.backward() runs, so the rule is tested inside the machinery.


class _Graph(NamedTuple):
    label: str
    build: Callable  # (x, y, z) -> the output Value


def _value_case(graph, values, dtype):
    """A Case whose args are (graph, leaf values): the runner builds the graph anew for every call."""
    values = tuple(float(np.asarray(v, dtype=dtype)) for v in values)
    leaves = [Value(v) for v in values]
    out = graph.build(*leaves)
    out.backward()
    expected = {f"{k}.grad": np.array(leaf.grad) for k, leaf in zip("xyz", leaves)}

    def f(k, v):
        args = list(values)
        args[k] = float(v[()])
        return graph.build(*(Value(a) for a in args)).data

    numeric = {f"{k}.grad": numerical_gradient(lambda v, i=i: f(i, v), np.array(values[i])) for i, k in enumerate("xyz")}
    return Case(f"{graph.label}, x, y, z = {', '.join(f'{v:.3g}' for v in values)}", (graph, values), expected, numeric)


def _value_cases(graphs, positive=False):
    """Leaf values 0.3 <= |v| <= 1.5, of either sign unless ``positive``."""
    def make(rng, dtype):
        signs = (lambda: np.ones(3)) if positive else (lambda: rng.choice([-1.0, 1.0], 3))
        return [_value_case(g, signs() * rng.uniform(0.3, 1.5, 3), dtype) for g in graphs]
    return make


def _local_rule_run(matches, call):
    """A runner that puts fn's local derivatives into every node that ``matches``, then runs Value.backward()."""
    def run(ex, fn, case):
        graph, values = case.args
        leaves = [Value(v) for v in values]
        out = graph.build(*leaves)
        for node in out.topological_order():
            if matches(node):
                node.local_grads = call(ex.name, fn, node)
        out.backward()
        return {f"{k}.grad": np.array(leaf.grad) for k, leaf in zip("xyz", leaves)}, []
    return run


def _numbers(fn_name, result, count, what):
    """The reader's local derivatives as a tuple of ``count`` floats, or a _Refused that says what is wrong."""
    values = result if isinstance(result, (tuple, list)) else (result,)
    if len(values) != count:
        raise _Refused(f"{fn_name} returned {len(values)} value{'s' if len(values) != 1 else ''}; {what}")
    for v in values:
        if isinstance(v, bool) or not isinstance(v, numbers.Real):
            raise _Refused(f"{fn_name} returned {type(v).__name__}; each local derivative is a number")
    return tuple(float(v) for v in values)


def _binary_call(fn_name, fn, node):
    a, b = (p.data for p in node.parents)
    return _numbers(fn_name, fn(a, b), 2, "a node with two parents needs (d out/da, d out/db)")


def _pow_exponent(node):
    return float(node.op[2:])  # the op is recorded as f"**{k:g}"; the graphs use exponents exact in that form


def _pow_call(fn_name, fn, node):
    return _numbers(fn_name, fn(node.parents[0].data, _pow_exponent(node)), 1, "a**k has one parent, a: return d(a**k)/da")


def _tanh_call(fn_name, fn, node):
    return _numbers(fn_name, fn(node.parents[0].data, node.data), 1, "tanh(a) has one parent, a: return d tanh(a)/da")


_ADD_GRAPHS = (
    _Graph("x + y", lambda x, y, z: x + y),
    _Graph("x + x", lambda x, y, z: x + x),
    _Graph("(x + y) * z + x", lambda x, y, z: (x + y) * z + x),
    _Graph("x - y + z", lambda x, y, z: x - y + z),
    _Graph("tanh(x + y) + y", lambda x, y, z: (x + y).tanh() + y),
)
_MUL_GRAPHS = (
    _Graph("x * y", lambda x, y, z: x * y),
    _Graph("x * x", lambda x, y, z: x * x),
    _Graph("x * y * z", lambda x, y, z: x * y * z),
    _Graph("(x * y + z) * x", lambda x, y, z: (x * y + z) * x),
    _Graph("tanh(x * y) * y", lambda x, y, z: (x * y).tanh() * y),
)
_POW_GRAPHS = (
    _Graph("x**2", lambda x, y, z: x**2),
    _Graph("x**3 + y**-1", lambda x, y, z: x**3 + y**-1),
    _Graph("(x * y)**0.5", lambda x, y, z: (x * y) ** 0.5),
    _Graph("x**1.5 * x + z**-0.5", lambda x, y, z: x**1.5 * x + z**-0.5),
    _Graph("x / y", lambda x, y, z: x / y),
)
_TANH_GRAPHS = (
    _Graph("tanh(x)", lambda x, y, z: x.tanh()),
    _Graph("tanh(x * y + z)", lambda x, y, z: (x * y + z).tanh()),
    _Graph("tanh(x) * tanh(x)", lambda x, y, z: x.tanh() * x.tanh()),
    _Graph("tanh(tanh(x) + y) * z", lambda x, y, z: (x.tanh() + y).tanh() * z),
)

_register(Exercise(
    "add_local_grads", "add_local_grads(a, b) -> (d(a+b)/da, d(a+b)/db)", ("a", "b"),
    _value_cases(_ADD_GRAPHS),
    (Mistake("only a gets a gradient: d(a + b)/db is 1 as well", lambda a, b: (1.0, 0.0)),
     Mistake("(b, a): the product rule; for a sum both local derivatives are 1", lambda a, b: (b, a)),
     Mistake("(a, b): the inputs' values; for a sum both local derivatives are 1", lambda a, b: (a, b))),
    run=_local_rule_run(lambda n: n.op == "+", _binary_call), reference="Value.backward"))

_register(Exercise(
    "mul_local_grads", "mul_local_grads(a, b) -> (d(ab)/da, d(ab)/db)", ("a", "b"),
    _value_cases(_MUL_GRAPHS),
    (Mistake("(a, b): each input's own value; d(ab)/da is the other input, b", lambda a, b: (a, b)),
     Mistake("(1, 1): the sum rule; for a product d(ab)/da = b and d(ab)/db = a", lambda a, b: (1.0, 1.0)),
     Mistake("(b, 0): b gets no gradient; d(ab)/db = a", lambda a, b: (b, 0.0))),
    run=_local_rule_run(lambda n: n.op == "*", _binary_call), reference="Value.backward"))

_register(Exercise(
    "pow_local_grads", "pow_local_grads(a, k) -> d(a**k)/da", ("a", "k"),
    _value_cases(_POW_GRAPHS, positive=True),
    (Mistake("k a**k: the exponent must drop by one, k a**(k - 1)", lambda a, k: k * a**k),
     Mistake("a**(k - 1): the factor k is missing, k a**(k - 1)", lambda a, k: a ** (k - 1)),
     Mistake("(k - 1) a**(k - 1): the factor is k, the exponent k - 1", lambda a, k: (k - 1) * a ** (k - 1))),
    run=_local_rule_run(lambda n: n.op.startswith("**"), _pow_call), reference="Value.backward"))

_register(Exercise(
    "tanh_local_grads", "tanh_local_grads(a, out) -> d tanh(a)/da", ("a", "out"),
    _value_cases(_TANH_GRAPHS),
    (Mistake("1 - a**2: the input a where the output belongs; tanh'(a) = 1 - out**2 (the wrong cached value)",
             lambda a, out: 1 - a * a),
     Mistake("out: tanh instead of tanh'; tanh'(a) = 1 - out**2", lambda a, out: out),
     Mistake("1 - out: the square is missing; tanh'(a) = 1 - out**2", lambda a, out: 1 - out)),
    run=_local_rule_run(lambda n: n.op == "tanh", _tanh_call), reference="Value.backward"))


# The topological order: the reader's function replaces Value.topological_order while
# the real Value.backward() runs. A chain 1500 nodes deep comes last: a recursive
# search fails there, on Python's recursion limit.

def _diamonds(x, y, z):
    v = x
    for _ in range(6):
        v = v.tanh() * v.sigmoid()  # two paths through every diamond
    return v * y + z


def _deep_chain(x, y, z):
    v = x
    for _ in range(1500):
        v = v + y * 0.001  # y is used 1500 times: its gradient is the sum of 1500 uses
    return v * z


_TOPO_GRAPHS = (
    _Graph("(x * y + z) * x", lambda x, y, z: (x * y + z) * x),
    _Graph("x * x", lambda x, y, z: x * x),
    _Graph("6 diamonds tanh(v) * sigmoid(v)", _diamonds),
    _Graph("tanh(x * y) * tanh(x * y + z)", lambda x, y, z: (x * y).tanh() * ((x * y) + z).tanh()),
    _Graph("a chain 1500 steps deep", _deep_chain),
)


def _order_problem(order, root):
    """What is wrong with ``order`` as a topological order of root's graph, or None."""
    if not isinstance(order, (list, tuple)):
        return f"returned {type(order).__name__}; expected a list of Values"
    if not all(isinstance(v, Value) for v in order):
        return "returned a list with something other than Values in it"
    nodes = _LIBRARY_ORDER(root)
    seen = {}
    for i, v in enumerate(order):
        if id(v) in seen:
            return (f"the node {_node_name(v)} appears twice (positions {seen[id(v)]} and {i}): a node reached by two "
                    f"paths was added twice; mark nodes as visited")
        seen[id(v)] = i
    missing = [v for v in nodes if id(v) not in seen]
    if missing:
        return f"{len(missing)} of the {len(nodes)} nodes are missing, for example {_node_name(missing[0])}"
    if len(order) != len(nodes):
        return f"the list has {len(order)} entries; the graph has {len(nodes)} nodes"
    for v in order:
        for p in v.parents:
            if seen[id(p)] > seen[id(v)]:
                return f"{_node_name(v)} comes before its parent {_node_name(p)}: every node must come after its parents"
    return None


def _node_name(v):
    return f"'{v.op}' = {v.data:.4g}" if v.op else f"leaf {v.data:.4g}"


_LIBRARY_ORDER = Value.topological_order  # kept before any check replaces it


class _Patched:
    """Value.topological_order replaced by the reader's function while a check runs (restored on exit).

    A call of Value.topological_order from inside the reader's function would call the
    reader's function again, for ever: it is refused with a message instead.
    """

    def __init__(self, fn):
        self.fn, self.inside = fn, False

    def order(self, root):
        if self.inside:
            raise _Refused("it calls Value.topological_order, the very function it replaces; write the search itself")
        self.inside = True
        try:
            return self.fn(root)
        finally:
            self.inside = False

    def __enter__(self):
        Value.topological_order = lambda root: self.order(root)
        return self

    def __exit__(self, *exc):
        Value.topological_order = _LIBRARY_ORDER


def _topo_run(ex, fn, case):
    graph, values = case.args
    leaves = [Value(v) for v in values]
    out = graph.build(*leaves)
    with _Patched(fn) as patched:
        problem = _order_problem(patched.order(out), out)
        if problem is None:
            out.backward()  # the real backward pass, walking the reader's order
    if problem is not None:
        raise _Refused(problem)
    return {f"{k}.grad": np.array(leaf.grad) for k, leaf in zip("xyz", leaves)}, []


def _topo_reversed(root):
    return list(reversed(_LIBRARY_ORDER(root)))


def _topo_no_visited(root):
    order, stack = [], [(root, False)]
    while stack:  # a depth-first search that never marks a node as visited
        node, done = stack.pop()
        if done:
            order.append(node)
        else:
            stack.append((node, True))
            stack.extend((p, False) for p in node.parents)
    return order


def _topo_recursive(root):
    order, seen = [], set()

    def visit(v):
        if v not in seen:
            seen.add(v)
            for p in v.parents:
                visit(p)
            order.append(v)

    visit(root)
    return order


_register(Exercise(
    "topological_order", "topological_order(root) -> list of Values", ("root",),
    _value_cases(_TOPO_GRAPHS),
    (Mistake("the order is reversed: parents must come first and the root last", _topo_reversed),
     Mistake("no visited set: a node reached by two paths is added twice", _topo_no_visited),
     Mistake("recursion, which fails on a deep graph", _topo_recursive)),
    run=_topo_run, reference="Value.backward"))


def check_add_local_grads(fn, *, dtype=np.float64, seed=0):
    """d(a + b)/da = 1, d(a + b)/db = 1: check the reader's add_local_grads(a, b).

    The rule is put into every '+' node of five graphs (a value used twice among them,
    and the subtraction a - b = a + (-b)); then Value.backward() runs and the leaves'
    gradients are compared with Value's own and with central differences.
    Parameters: fn, called as fn(a, b) with a, b the parents' values (floats), returning
    two numbers; dtype, np.float64 or np.float32 (leaf values rounded to it); seed, an
    integer >= 0. Returns: a CheckResult. Exercise of chapter 2.
    """
    return _check(EXERCISES["add_local_grads"], fn, dtype, seed, "check_add_local_grads")


def check_mul_local_grads(fn, *, dtype=np.float64, seed=0):
    """d(ab)/da = b, d(ab)/db = a: check the reader's mul_local_grads(a, b).

    The rule is put into every '*' node of five graphs (x * x, and the division
    x / y = x * y**-1, among them) before Value.backward() runs.
    Parameters: fn, called as fn(a, b), returning two numbers; dtype, np.float64 or
    np.float32; seed, an integer >= 0. Returns: a CheckResult. Exercise of chapter 2.
    """
    return _check(EXERCISES["mul_local_grads"], fn, dtype, seed, "check_mul_local_grads")


def check_pow_local_grads(fn, *, dtype=np.float64, seed=0):
    """d(a**k)/da = k a**(k - 1): check the reader's pow_local_grads(a, k).

    The rule is put into every power node (k in 2, 3, -1, 0.5, 1.5, -0.5; positive
    bases) before Value.backward() runs.
    Parameters: fn, called as fn(a, k) with floats a > 0 and k, returning a number;
    dtype, np.float64 or np.float32; seed, an integer >= 0.
    Returns: a CheckResult. Exercise of chapter 2.
    """
    return _check(EXERCISES["pow_local_grads"], fn, dtype, seed, "check_pow_local_grads")


def check_tanh_local_grads(fn, *, dtype=np.float64, seed=0):
    """d tanh(a)/da = 1 - out**2: check the reader's tanh_local_grads(a, out).

    Parameters: fn, called as fn(a, out) with a the parent's value and out = tanh(a),
    returning a number; dtype, np.float64 or np.float32; seed, an integer >= 0.
    Returns: a CheckResult. Exercise of chapter 2.
    """
    return _check(EXERCISES["tanh_local_grads"], fn, dtype, seed, "check_tanh_local_grads")


def check_topological_order(fn, *, dtype=np.float64, seed=0):
    """Every node after all of its parents, each once, the root last: check the reader's topological_order(root).

    The order is checked as a list (each node once, none missing, parents first), then
    used by the real Value.backward() in place of Value.topological_order on five
    graphs, the last a chain 1500 steps deep, and the leaves' gradients are compared.
    Parameters: fn, called as fn(root) with root a Value, returning a list of Values;
    dtype, np.float64 or np.float32; seed, an integer >= 0.
    Returns: a CheckResult. Exercise of chapter 2.
    """
    return _check(EXERCISES["topological_order"], fn, dtype, seed, "check_topological_order")


# --------------------------------------------------------------------------------------
# Chapter 3: BP1-BP4 for one example, column vectors, W[l] of shape (n_l, n_(l-1))
#
# Lists are indexed by layer as in the chapter: W[0], b[0] and z[0] are None, a[0] = x.

_NETWORKS = ((3, 4, 2), (2, 5, 5, 3), (4, 4, 4), (5, 1), (1, 3, 3, 2, 1))


def _net_forward(W, b, x):
    z, a = [None], [x]
    for k in range(1, len(W)):  # k is the chapter's layer index l
        z.append(W[k] @ a[k - 1] + b[k])
        a.append(activations.sigmoid(z[k]))
    return z, a


def _net_reference(W, b, x, t):
    """delta, dW and db from bplib's pairs, in the row layout of chapter 4 (one example: N = 1)."""
    a, caches = x[None, :], []
    for k in range(1, len(W)):
        z, lin = linear.linear_forward(a, W[k].T, b[k])  # the row layout uses W transposed
        a, sig = activations.sigmoid_forward(z)
        caches.append((lin, sig))
    _, loss_cache = losses.half_squared_error_forward(a, t[None, :])  # L = 1/2 sum (a - t)^2 for N = 1
    da = losses.half_squared_error_backward(1.0, loss_cache)
    delta, dW, db = [None] * len(W), [None] * len(W), [None] * len(W)
    for k in range(len(W) - 1, 0, -1):
        lin, sig = caches[k - 1]
        dz = activations.sigmoid_backward(da, sig)
        da, dW_rows, db[k] = linear.linear_backward(dz, lin)
        delta[k], dW[k] = dz[0], dW_rows.T
    return delta, dW, db


def _net_loss(W, b, x, t):
    return 0.5 * float(np.sum((_net_forward(W, b, x)[1][-1] - t) ** 2))


def _loss_of_z(W, b, t, k, zk):
    """L as a function of z^k: the layers above k are recomputed from sigma(z^k)."""
    act = activations.sigmoid(zk)
    for m in range(k + 1, len(W)):
        act = activations.sigmoid(W[m] @ act + b[m])
    return 0.5 * float(np.sum((act - t) ** 2))


def _net_params(rng, sizes, dtype):
    """W, b (lists indexed by layer), x and t, rounded to dtype, and their float64 copies."""
    W = [None] + [rng.standard_normal((m, n)).astype(dtype) for n, m in zip(sizes[:-1], sizes[1:])]
    b = [None] + [rng.standard_normal(m).astype(dtype) for m in sizes[1:]]
    x, t = rng.standard_normal(sizes[0]).astype(dtype), rng.random(sizes[-1]).astype(dtype)
    return (W, b, x, t), ([_f64(v) for v in W], [_f64(v) for v in b], _f64(x), _f64(t))


def _replaced(v, k, value):
    return v[:k] + [value] + v[k + 1:]


def _deltas_cases(rng, dtype):
    cases = []
    for sizes in _NETWORKS:
        (W, b, x, t), (W64, b64, x64, t64) = _net_params(rng, sizes, dtype)
        z, a = _net_forward(W64, b64, x64)
        delta = _net_reference(W64, b64, x64, t64)[0]
        layers = range(1, len(W))
        numeric = {f"delta{k}": numerical_gradient(functools.partial(_loss_of_z, W64, b64, t64, k), z[k]) for k in layers}
        zd, ad = [None] + [_in_dtype(v, dtype) for v in z[1:]], [_in_dtype(v, dtype) for v in a]
        cases.append(Case(f"sizes {list(sizes)}", (W, zd, ad, t), {f"delta{k}": delta[k] for k in layers}, numeric))
    return cases


def _numeric_net_grads(W, b, x, t):
    """Central differences of the loss with respect to every W[k] and b[k]."""
    out = {}
    for k in range(1, len(W)):
        out[f"dW{k}"] = numerical_gradient(lambda v, k=k: _net_loss(_replaced(W, k, v), b, x, t), W[k])
        out[f"db{k}"] = numerical_gradient(lambda v, k=k: _net_loss(W, _replaced(b, k, v), x, t), b[k])
    return out


def _backprop_cases(rng, dtype):
    cases = []
    for sizes in _NETWORKS:
        args, args64 = _net_params(rng, sizes, dtype)
        _, dW, db = _net_reference(*args64)
        expected = {name: v for k in range(1, len(dW)) for name, v in ((f"dW{k}", dW[k]), (f"db{k}", db[k]))}
        cases.append(Case(f"sizes {list(sizes)}", args, expected, _numeric_net_grads(*args64)))
    return cases


def _layer_list(fn_name, name, value, layers):
    """The reader's list indexed by layer, index 0 unused, as a dict {f'{name}{k}': array}."""
    if not isinstance(value, (list, tuple)):
        raise _Refused(f"{fn_name} returned {name} as {type(value).__name__}; expected a list indexed by layer")
    if len(value) != layers + 1:
        raise _Refused(f"{fn_name} returned a list {name} of {len(value)} entries for {layers} layers; the lists keep "
                       f"index 0 unused (None), so that {name}[l] belongs to layer l, and have {layers + 1} entries")
    return {f"{name}{k}": _array(f"{name}[{k}]", value[k]) for k in range(1, layers + 1)}


def _deltas_run(ex, fn, case):
    args = copy.deepcopy(case.args)
    result = fn(*args)
    layers = len(case.args[0]) - 1
    changed = [p for name, b, a in zip(ex.params, case.args, args) for p in _changed(name, b, a)]
    return _layer_list(ex.name, "delta", result, layers), changed


def _backprop_run(ex, fn, case):
    args = copy.deepcopy(case.args)
    result = fn(*args)
    layers = len(case.args[0]) - 1
    if not isinstance(result, tuple) or len(result) != 2:
        raise _Refused(f"{ex.name} returned {type(result).__name__}; expected a pair of lists (dW, db)")
    changed = [p for name, b, a in zip(ex.params, case.args, args) for p in _changed(name, b, a)]
    return {**_layer_list(ex.name, "dW", result[0], layers), **_layer_list(ex.name, "db", result[1], layers)}, changed


def _deltas_variant(W, z, a, t, *, bp1_prime=True, transpose=True, prime=activations.sigmoid_prime, of_a=False):
    """BP1 and BP2 with one of the usual mistakes switched on (the defaults are right)."""
    last = len(W) - 1
    at = a if of_a else z  # where sigma' is evaluated
    delta = [None] * (last + 1)
    delta[last] = (a[last] - t) * (prime(at[last]) if bp1_prime else 1.0)
    for k in range(last - 1, 0, -1):
        back = W[k + 1].T @ delta[k + 1] if transpose else W[k + 1] @ delta[k + 1]
        delta[k] = back * prime(at[k])
    return delta


def _backprop_variant(W, b, x, t, *, outer_first="delta", a_index=-1, prime_of_a=False):
    z, a = _net_forward(W, b, x)
    delta = _deltas_variant(W, z, a, t, of_a=prime_of_a)
    layers = range(1, len(W))
    if outer_first == "delta":
        dW = [None] + [np.outer(delta[k], a[k + a_index]) for k in layers]
    else:
        dW = [None] + [np.outer(a[k + a_index], delta[k]) for k in layers]
    return dW, [None] + [delta[k].copy() for k in layers]


_register(Exercise(
    "deltas", "deltas(W, z, a, t) -> delta", ("W", "z", "a", "t"),
    _deltas_cases,
    (Mistake("BP1 without sigma'(z^Lambda): delta^Lambda = (a^Lambda - t) * sigma'(z^Lambda)",
             lambda W, z, a, t: _deltas_variant(W, z, a, t, bp1_prime=False)),
     Mistake("BP2 without the transpose: W^(l+1) has shape (n_(l+1), n_l), so the error goes back through "
             "its transpose, (W^(l+1))^T delta^(l+1)", lambda W, z, a, t: _deltas_variant(W, z, a, t, transpose=False)),
     Mistake("sigma instead of sigma': BP1 and BP2 multiply by sigma'(z) = a (1 - a)",
             lambda W, z, a, t: _deltas_variant(W, z, a, t, prime=activations.sigmoid)),
     Mistake("sigma'(a) instead of sigma'(z): the derivative is taken at the weighted input z^l "
             "(sigma'(z^l) = a^l (1 - a^l)); the wrong cached value", lambda W, z, a, t: _deltas_variant(W, z, a, t, of_a=True))),
    run=_deltas_run))

_register(Exercise(
    "backprop", "backprop(W, b, x, t) -> (dW, db)", ("W", "b", "x", "t"), _backprop_cases,
    (Mistake("BP4 transposed: dL/dw^l_jk = delta^l_j a^(l-1)_k, an (n_l, n_(l-1)) matrix like W^l",
             lambda W, b, x, t: _backprop_variant(W, b, x, t, outer_first="a")),
     Mistake("a^l in BP4 where a^(l-1) belongs: a weight's gradient is the activation it comes from times "
             "the error it goes into", lambda W, b, x, t: _backprop_variant(W, b, x, t, a_index=0)),
     Mistake("sigma'(a) instead of sigma'(z) in BP1 and BP2 (the wrong cached value)",
             lambda W, b, x, t: _backprop_variant(W, b, x, t, prime_of_a=True))),
    run=_backprop_run))


def check_deltas(fn, *, dtype=np.float64, seed=0):
    """delta^Lambda = (a^Lambda - t) sigma'(z^Lambda) (BP1), delta^l = ((W^(l+1))^T delta^(l+1)) sigma'(z^l) (BP2).

    Checks the reader's deltas(W, z, a, t) on five sigmoid networks (one example, the
    loss 1/2 sum (a - t)^2), against bplib's pairs and central differences of the loss
    with respect to each z^l. Parameters: fn, called as fn(W, z, a, t) with lists W
    (W[l] of shape (n_l, n_(l-1))), z, a indexed by layer (W[0] and z[0] None, a[0] = x)
    and t (n_Lambda,), returning the list delta (delta[0] None); dtype, np.float64 or
    np.float32; seed, an integer >= 0. Returns: a CheckResult. Exercise of chapter 3.
    """
    return _check(EXERCISES["deltas"], fn, dtype, seed, "check_deltas")


def check_backprop(fn, *, dtype=np.float64, seed=0):
    """dL/db^l = delta^l (BP3), dL/dW^l = delta^l (a^(l-1))^T (BP4): check the reader's backprop(W, b, x, t).

    Parameters: fn, called as fn(W, b, x, t) with lists W, b indexed by layer (index 0
    None), x (n_0,) and t (n_Lambda,), returning (dW, db), two lists indexed by layer;
    dtype, np.float64 or np.float32; seed, an integer >= 0.
    Returns: a CheckResult. Exercise of chapter 3.
    """
    return _check(EXERCISES["backprop"], fn, dtype, seed, "check_backprop")


# --------------------------------------------------------------------------------------
# Chapter 4: the minibatch linear layer, and a two-layer network

_LINEAR_SHAPES = ((3, 5, 4), (1, 2, 3), (4, 3, 3), (7, 1, 5), (2, 6, 1))  # (N, D, M)


def _linear_cases(rng, dtype):
    return [_pair_case(rng, dtype, _shape_text(x=(N, D), W=(D, M)), linear.linear_forward, linear.linear_backward,
                       (rng.standard_normal((N, D)), rng.standard_normal((D, M)), rng.standard_normal(M)),
                       ("dx", "dW", "db"), n=N) for N, D, M in _LINEAR_SHAPES]


_register(Exercise(
    "linear_backward", "linear_backward(dy, cache) -> (dx, dW, db)", ("dy", "cache"), _linear_cases,
    (Mistake("dx = dy W without the transpose: y = x W, so dx = dy W^T, (N, M)(M, D)",
             lambda dy, c: (dy @ c.W, c.x.T @ dy, dy.sum(axis=0))),
     Mistake("dW = x^T dy / N: the 1/N of the mean loss is already inside dy",
             lambda dy, c: (dy @ c.W.T, c.x.T @ dy / len(dy), dy.sum(axis=0)))),
    outputs=("dx", "dW", "db")))


def _with_arg(f, args, i, v):
    """f(*args) with args[i] replaced by v."""
    return f(*args[:i], v, *args[i + 1:])


def _two_layer_loss(x, t, W1, b1, W2, b2):
    h = np.tanh(x @ W1 + b1)
    return 0.5 * float(np.sum((h @ W2 + b2 - t) ** 2)) / len(x)


def _two_layer_reference(x, t, W1, b1, W2, b2):
    """The gradients from bplib's pairs: linear, tanh, linear, half squared error."""
    z1, c1 = linear.linear_forward(x, W1, b1)
    h, ct = activations.tanh_forward(z1)
    y, c2 = linear.linear_forward(h, W2, b2)
    _, cl = losses.half_squared_error_forward(y, t)
    dh, dW2, db2 = linear.linear_backward(losses.half_squared_error_backward(1.0, cl), c2)
    _, dW1, db1 = linear.linear_backward(activations.tanh_backward(dh, ct), c1)
    return dW1, db1, dW2, db2


_TWO_LAYER_SHAPES = ((4, 3, 5, 2), (1, 2, 3, 4), (5, 4, 4, 4), (3, 6, 2, 3))  # (N, D, Dh, M)


def _two_layer_cases(rng, dtype):
    cases = []
    for N, D, Dh, M in _TWO_LAYER_SHAPES:
        arrays = (rng.standard_normal((N, D)), rng.standard_normal((N, M)), rng.standard_normal((D, Dh)) / np.sqrt(D),
                  rng.standard_normal(Dh), rng.standard_normal((Dh, M)) / np.sqrt(Dh), rng.standard_normal(M))
        a64 = tuple(a.astype(dtype).astype(np.float64) for a in arrays)
        names = ("dW1", "db1", "dW2", "db2")
        expected = dict(zip(names, _two_layer_reference(*a64)))
        numeric = {name: numerical_gradient(functools.partial(_with_arg, _two_layer_loss, a64, i), a64[i])
                   for name, i in zip(names, range(2, 6))}
        label = _shape_text(x=(N, D), W1=(D, Dh), W2=(Dh, M))
        cases.append(Case(label, tuple(a.astype(dtype) for a in a64), expected, numeric, N))
    return cases


def _two_layer_variant(x, t, W1, b1, W2, b2, *, dtanh=lambda h, z: 1 - h * h, mean=True):
    z1 = x @ W1 + b1
    h = np.tanh(z1)
    dy = (h @ W2 + b2 - t) / (len(x) if mean else 1)
    dh = dy @ W2.T
    dz1 = dh * dtanh(h, z1)
    return x.T @ dz1, dz1.sum(axis=0), h.T @ dy, dy.sum(axis=0)


_register(Exercise(
    "two_layer_backward", "two_layer_backward(x, t, W1, b1, W2, b2) -> (dW1, db1, dW2, db2)",
    ("x", "t", "W1", "b1", "W2", "b2"), _two_layer_cases,
    (Mistake("1 - tanh(h)^2: h = tanh(z1) is already the output of tanh, so tanh'(z1) = 1 - h^2 "
             "(the wrong cached value)", lambda *a: _two_layer_variant(*a, dtanh=lambda h, z: 1 - np.tanh(h) ** 2)),
     Mistake("the derivative of tanh is missing: dz1 = dh * (1 - h^2)", lambda *a: _two_layer_variant(*a, dtanh=lambda h, z: 1.0)),
     Mistake("a missing 1/N: L = (1/2N) sum (y - t)^2, so dy = (y - t) / N", lambda *a: _two_layer_variant(*a, mean=False))),
    outputs=("dW1", "db1", "dW2", "db2")))


def check_linear_backward(fn, *, dtype=np.float64, seed=0):
    """dx = dy W^T, dW = x^T dy, db = sum_n dy_n: check the reader's linear_backward(dy, cache).

    Parameters: fn, called as fn(dy, cache) with dy (N, M) and cache from
    linear.linear_forward (cache.x (N, D), cache.W (D, M)), returning (dx, dW, db);
    dtype, np.float64 or np.float32; seed, an integer >= 0.
    Returns: a CheckResult. Exercise of chapter 4.
    """
    return _check(EXERCISES["linear_backward"], fn, dtype, seed, "check_linear_backward")


def check_two_layer_backward(fn, *, dtype=np.float64, seed=0):
    """The gradients of L = (1/2N) sum (tanh(x W1 + b1) W2 + b2 - t)^2: check the reader's two_layer_backward.

    Parameters: fn, called as fn(x, t, W1, b1, W2, b2) with x (N, D), t (N, M),
    W1 (D, Dh), b1 (Dh,), W2 (Dh, M), b2 (M,), returning (dW1, db1, dW2, db2);
    dtype, np.float64 or np.float32; seed, an integer >= 0.
    Returns: a CheckResult. Exercise of chapter 4.
    """
    return _check(EXERCISES["two_layer_backward"], fn, dtype, seed, "check_two_layer_backward")


# --------------------------------------------------------------------------------------
# Chapter 5: one step of SGD with momentum, one step of Adam, as pure functions
#
# The reader's step is applied STEPS times in a row, each time to its own previous
# output, and every iterate is compared with bplib.optim run on the same gradients.

STEPS = 5


def _trajectory(ex, fn, case, state_names):
    """Run the reader's step STEPS times; return every iterate, stacked: (STEPS, *shape) per name."""
    w0, grads, hyper = case.args
    state = {"w": w0.copy(), **{k: np.zeros_like(w0) for k in state_names}}
    history, changed = {k: [] for k in state}, []
    for t, g in enumerate(grads, start=1):
        args = (state["w"], g) + tuple(state[k] for k in state_names) + ex.make_cases.step_args(t, hyper)
        before = copy.deepcopy(args)
        result = fn(*args)
        now = [p for name, b, a in zip(ex.params, before, args) for p in _changed(name, b, a)]
        changed = changed or ([f"{', '.join(now)} (at step {t})"] if now else [])
        ex_out = Exercise(ex.name, "", (), None, outputs=tuple(f"{k}_new" for k in state))
        out = _named_outputs(ex_out, result)
        for k in state:
            new = out[f"{k}_new"]
            if new.shape != w0.shape:
                raise _Refused(f"step {t}: {k}_new has shape {new.shape}; expected {w0.shape}, the shape of w")
            state[k] = new.copy()  # a copy: an output that aliases an argument must not rewrite history
            history[k].append(new.copy())
    return {k: np.stack(v) for k, v in history.items()}, changed


def _library_trajectory(optimizer, w0, grads, state_keys):
    params = {"w": w0.astype(np.float64)}
    history = {k: [] for k in ("w",) + tuple(state_keys.values())}
    for g in grads:
        optimizer.step(params, {"w": g.astype(np.float64)})
        history["w"].append(params["w"].copy())
        for src, name in state_keys.items():
            history[name].append(optimizer.state["w"][src].copy())
    return {k: np.stack(v) for k, v in history.items()}


class _OptimizerCases:
    """The cases of an optimizer exercise: shapes, hyperparameters, a gradient per step."""

    def __init__(self, settings, make_optimizer, state_keys, step_args):
        self.settings, self.make_optimizer, self.state_keys, self.step_args = settings, make_optimizer, state_keys, step_args

    def __call__(self, rng, dtype):
        cases = []
        for shape, hyper, gscale in self.settings:
            w0 = rng.standard_normal(shape).astype(dtype)
            grads = tuple((gscale * rng.standard_normal(shape)).astype(dtype) for _ in range(STEPS))
            expected = _library_trajectory(self.make_optimizer(hyper), w0, grads, self.state_keys)
            label = f"w {shape}, {', '.join(f'{k} {v:g}' for k, v in hyper.items())}, {STEPS} steps (axis 0 = step)"
            cases.append(Case(label, (w0, grads, hyper), expected, {}))
        return cases


_SGD_SETTINGS = (((3,), {"lr": 0.1, "momentum": 0.9}, 1.0), ((4, 5), {"lr": 0.05, "momentum": 0.5}, 1.0),
                 ((2, 3, 2), {"lr": 0.5, "momentum": 0.99}, 1.0), ((1,), {"lr": 0.2, "momentum": 0.7}, 1.0))


def _sgd_variant(w, dw, v, lr, momentum, *, velocity=True, damp=False, old_v=False, lr_twice=False):
    v_new = momentum * v + ((1 - momentum) * dw if damp else (lr * dw if lr_twice else dw))
    if not velocity:
        return w - lr * dw, v_new
    return w - lr * (v if old_v else v_new), v_new


def _sgd_other_convention(w, dw, v, lr, momentum):
    v_new = momentum * v - lr * dw
    return w + v_new, v_new


def _sgd_in_place(w, dw, v, lr, momentum):
    v *= momentum
    v += dw
    w -= lr * v
    return w, v


_register(Exercise(
    "sgd_momentum_step", "sgd_momentum_step(w, dw, v, lr, momentum) -> (w_new, v_new)",
    ("w", "dw", "v", "lr", "momentum"),
    _OptimizerCases(_SGD_SETTINGS, lambda h: optim.SGD(h["lr"], momentum=h["momentum"]), {"v": "v"},
                    lambda t, h: (h["lr"], h["momentum"])),
    (Mistake("momentum ignored: w moves by -lr dw instead of -lr v_new", lambda *a: _sgd_variant(*a, velocity=False)),
     Mistake("an average, v = mu v + (1 - mu) dw (dampening); bplib and PyTorch sum, v = mu v + dw",
             lambda *a: _sgd_variant(*a, damp=True)),
     Mistake("w moves with the old velocity: update v first, then w = w - lr v_new", lambda *a: _sgd_variant(*a, old_v=True)),
     Mistake("lr applied twice: v = mu v + dw, then w = w - lr v (lr only in the step of w)",
             lambda *a: _sgd_variant(*a, lr_twice=True)),
     Mistake("v holds -lr times bplib's velocity: v = mu v - lr dw with w = w + v gives the same w, but bplib and "
             "PyTorch keep v = mu v + dw and w = w - lr v", _sgd_other_convention)),
    run=lambda ex, fn, case: _trajectory(ex, fn, case, ("v",)), reference="bplib.optim"))


_ADAM_SETTINGS = (((3,), {"lr": 0.1, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8}, 1.0),
                  ((4, 5), {"lr": 0.05, "beta1": 0.8, "beta2": 0.99, "eps": 1e-8}, 1.0),
                  ((2, 3, 2), {"lr": 0.1, "beta1": 0.9, "beta2": 0.999, "eps": 0.1}, 0.3),
                  ((1,), {"lr": 0.2, "beta1": 0.5, "beta2": 0.9, "eps": 1e-3}, 0.01))


def _adam_variant(w, dw, m, r, t, lr, beta1, beta2, eps, *, correct=True, t_shift=0, eps_inside=False, square=True,
                  root=True, swap=False):
    if swap:
        beta1, beta2 = beta2, beta1
    m_new = beta1 * m + (1 - beta1) * dw
    r_new = beta2 * r + (1 - beta2) * (dw * dw if square else dw)
    tc = t + t_shift
    with np.errstate(divide="ignore", invalid="ignore"):
        m_hat = m_new / (1 - beta1**tc) if correct else m_new
        r_hat = r_new / (1 - beta2**tc) if correct else r_new
        denom = np.sqrt(r_hat + eps) if eps_inside else ((np.sqrt(r_hat) if root else r_hat) + eps)
        return w - lr * m_hat / denom, m_new, r_new


_register(Exercise(
    "adam_step", "adam_step(w, dw, m, r, t, lr, beta1, beta2, eps) -> (w_new, m_new, r_new)",
    ("w", "dw", "m", "r", "t", "lr", "beta1", "beta2", "eps"),
    _OptimizerCases(_ADAM_SETTINGS, lambda h: optim.Adam(h["lr"], h["beta1"], h["beta2"], h["eps"]),
                    {"m": "m", "r": "r"}, lambda t, h: (t, h["lr"], h["beta1"], h["beta2"], h["eps"])),
    (Mistake("no bias correction: divide m by 1 - beta1^t and r by 1 - beta2^t before the step",
             lambda *a: _adam_variant(*a, correct=False)),
     Mistake("the bias correction counts from t = 0: t is the number of this step, 1 for the first",
             lambda *a: _adam_variant(*a, t_shift=-1)),
     Mistake("eps inside the square root: the step divides by sqrt(r_hat) + eps",
             lambda *a: _adam_variant(*a, eps_inside=True)),
     Mistake("r averages dw, not dw^2: the second moment is a running mean of the squared gradient",
             lambda *a: _adam_variant(*a, square=False)),
     Mistake("no square root: the step divides by sqrt(r_hat) + eps, a root mean square",
             lambda *a: _adam_variant(*a, root=False)),
     Mistake("beta1 and beta2 swapped: beta1 weights m, beta2 weights r", lambda *a: _adam_variant(*a, swap=True))),
    run=lambda ex, fn, case: _trajectory(ex, fn, case, ("m", "r")), reference="bplib.optim"))


def check_sgd_momentum_step(fn, *, dtype=np.float64, seed=0):
    """v_new = momentum v + dw, w_new = w - lr v_new: check the reader's sgd_momentum_step.

    The step is applied 5 times in a row from v = 0, on four parameter shapes, and
    every w_new and v_new is compared with optim.SGD(lr, momentum) on the same
    gradients; arguments changed in place are reported (the step must be pure).
    Parameters: fn, called as fn(w, dw, v, lr, momentum) with arrays w, dw, v of one
    shape and floats lr, momentum, returning (w_new, v_new); dtype, np.float64 or
    np.float32; seed, an integer >= 0. Returns: a CheckResult. Exercise of chapter 5.
    """
    return _check(EXERCISES["sgd_momentum_step"], fn, dtype, seed, "check_sgd_momentum_step")


def check_adam_step(fn, *, dtype=np.float64, seed=0):
    """m, r <- running means of dw and dw^2; w <- w - lr m_hat / (sqrt(r_hat) + eps): check the reader's adam_step.

    m_hat = m / (1 - beta1^t), r_hat = r / (1 - beta2^t). The step is applied 5 times
    (t = 1, ..., 5) from m = r = 0 and compared with optim.Adam on the same gradients.
    Parameters: fn, called as fn(w, dw, m, r, t, lr, beta1, beta2, eps), returning
    (w_new, m_new, r_new); dtype, np.float64 or np.float32; seed, an integer >= 0.
    Returns: a CheckResult. Exercise of chapter 5.
    """
    return _check(EXERCISES["adam_step"], fn, dtype, seed, "check_adam_step")


# --------------------------------------------------------------------------------------
# Chapter 6: softmax, log-softmax and the softmax cross-entropy

_CLASS_SHAPES = ((3, 5), (1, 4), (6, 2), (4, 7))  # (N, K)


def _softmax_family_cases(forward, backward):
    def make(rng, dtype):
        return [_pair_case(rng, dtype, f"z {shape}", forward, backward, (2.0 * rng.standard_normal(shape),), ("dz",), n=shape[0])
                for shape in _CLASS_SHAPES]
    return make


def _sce_cases(rng, dtype):
    cases = []
    for (N, K), scale in zip(_CLASS_SHAPES + ((5, 3),), (2.0, 2.0, 2.0, 2.0, 30.0)):
        z, y = scale * rng.standard_normal((N, K)), rng.integers(0, K, N)
        label = f"z {(N, K)}" + (", large logits" if scale > 2 else "")
        cases.append(_pair_case(rng, dtype, label, losses.softmax_cross_entropy_forward, losses.softmax_cross_entropy_backward,
                                (z, y), ("dz",), wrt=(0,), n=N))
    return cases


_KEEPDIMS = ("the row sums lost their axis: a sum over axis -1 of an (N, K) array has shape (N,), which does not "
             "line up with the rows; keepdims=True gives (N, 1)")


def _rowsum(a, axis=-1):
    return np.sum(a, axis=axis, keepdims=True)


_register(Exercise(
    "softmax_backward", "softmax_backward(ds, cache) -> dz", ("ds", "cache"),
    _softmax_family_cases(losses.softmax_forward, losses.softmax_backward),
    (Mistake("only the diagonal of the Jacobian, s (1 - s); the off-diagonal entries -s_i s_j are missing: "
             "dz = s * (ds - sum_k ds_k s_k)", lambda ds, c: ds * c.s * (1 - c.s)),
     Mistake("the sum runs over the batch (axis 0); it runs over the classes of each row (axis -1)",
             lambda ds, c: c.s * (ds - _rowsum(ds * c.s, axis=0))),
     Mistake("sum_k ds_k without the weights s_k: dz = s * (ds - sum_k ds_k s_k)", lambda ds, c: c.s * (ds - _rowsum(ds))),
     Mistake(_KEEPDIMS, lambda ds, c: c.s * (ds - np.sum(ds * c.s, axis=-1)))),
    outputs=("dz",)))

_register(Exercise(
    "log_softmax_backward", "log_softmax_backward(dout, cache) -> dz", ("dout", "cache"),
    _softmax_family_cases(losses.log_softmax_forward, losses.log_softmax_backward),
    (Mistake("only the diagonal of the Jacobian, 1 - s: dz = dout - s * sum_k dout_k", lambda d, c: d * (1 - c.s)),
     Mistake("the Jacobian without its transpose: dout - (s . dout) 1; the backward applies (I - 1 s^T)^T = I - s 1^T, "
             "so dz = dout - s * sum_k dout_k", lambda d, c: d - _rowsum(c.s * d)),
     Mistake("the sum runs over the batch (axis 0); it runs over the classes of each row (axis -1)",
             lambda d, c: d - c.s * _rowsum(d, axis=0)),
     Mistake(_KEEPDIMS, lambda d, c: d - c.s * np.sum(d, axis=-1))),
    outputs=("dz",)))


def _sce_dz(c, dloss=1.0, n=True):
    dz = c.s.copy()
    dz[np.arange(len(dz)), c.y] -= 1.0
    return dloss * dz / (len(dz) if n else 1)


def _sce_column_bug(dl, c):
    dz = c.s.copy()
    dz[:, c.y] -= 1.0  # subtracts 1 from the columns y of EVERY row
    return dl * dz / len(dz)


_register(Exercise(
    "softmax_cross_entropy_backward", "softmax_cross_entropy_backward(dloss, cache) -> dz", ("dloss", "cache"),
    _sce_cases,
    (Mistake("dloss is not multiplied in: dz = dloss (s - onehot(y)) / N", lambda dl, c: _sce_dz(c)),
     Mistake("dz[:, y] -= 1 subtracts 1 from the columns y of every row; dz[np.arange(N), y] -= 1 picks one entry a row",
             _sce_column_bug),
     Mistake("(s - onehot(y)) times the softmax Jacobian: the 1/s of the log cancels it, dz = dloss (s - onehot) / N",
             lambda dl, c: losses.softmax_backward(_sce_dz(c, dl), losses.SoftmaxCache(c.s)))),
    outputs=("dz",)))


def check_softmax_backward(fn, *, dtype=np.float64, seed=0):
    """dz = s * (ds - sum_k ds_k s_k), row by row: check the reader's softmax_backward(ds, cache).

    Parameters: fn, called as fn(ds, cache) with ds (N, K) and cache from
    losses.softmax_forward (cache.s (N, K)), returning dz (N, K); dtype, np.float64 or
    np.float32; seed, an integer >= 0. Returns: a CheckResult. Exercise of chapter 6.
    """
    return _check(EXERCISES["softmax_backward"], fn, dtype, seed, "check_softmax_backward")


def check_log_softmax_backward(fn, *, dtype=np.float64, seed=0):
    """dz = dout - s * sum_k dout_k, row by row: check the reader's log_softmax_backward(dout, cache).

    Parameters: fn, called as fn(dout, cache) with dout (N, K) and cache from
    losses.log_softmax_forward (cache.s = exp(out), (N, K)), returning dz (N, K);
    dtype, np.float64 or np.float32; seed, an integer >= 0.
    Returns: a CheckResult. Exercise of chapter 6.
    """
    return _check(EXERCISES["log_softmax_backward"], fn, dtype, seed, "check_log_softmax_backward")


def check_softmax_cross_entropy_backward(fn, *, dtype=np.float64, seed=0):
    """dz = dloss (softmax(z) - onehot(y)) / N: check the reader's softmax_cross_entropy_backward(dloss, cache).

    Parameters: fn, called as fn(dloss, cache) with dloss a float and cache from
    losses.softmax_cross_entropy_forward (cache.s (N, K), cache.y (N,) integer labels),
    returning dz (N, K); dtype, np.float64 or np.float32; seed, an integer >= 0.
    Returns: a CheckResult. Exercise of chapter 6.
    """
    return _check(EXERCISES["softmax_cross_entropy_backward"], fn, dtype, seed, "check_softmax_cross_entropy_backward")


# --------------------------------------------------------------------------------------
# Chapter 7: the naive convolution backward, every stride and padding; max pooling

# (x shape, W shape, stride, pad): every stride 1-3 with every padding 0-2, odd sizes,
# non-square kernels, and strides that leave rows and columns out.
_CONV_SETTINGS = (((2, 3, 5, 7), (4, 3, 3, 2), 1, 0), ((1, 2, 5, 5), (3, 2, 3, 3), 1, 1), ((2, 1, 4, 5), (2, 1, 3, 3), 1, 2),
                  ((2, 2, 7, 5), (3, 2, 3, 3), 2, 0), ((1, 3, 6, 7), (2, 3, 3, 2), 2, 1), ((2, 2, 5, 5), (2, 2, 2, 2), 2, 2),
                  ((1, 2, 7, 8), (3, 2, 2, 3), 3, 0), ((2, 1, 6, 5), (2, 1, 3, 3), 3, 1), ((1, 2, 5, 6), (2, 2, 1, 1), 3, 2))


def _conv_cases(rng, dtype):
    cases = []
    for xs, ws, stride, pad in _CONV_SETTINGS:
        inputs = (rng.standard_normal(xs), rng.standard_normal(ws), rng.standard_normal(ws[0]))
        label = f"{_shape_text(x=xs, W=ws)}, stride {stride}, pad {pad}"
        cases.append(_pair_case(rng, dtype, label, conv.conv2d_naive_forward, conv.conv2d_naive_backward, inputs,
                                ("dx", "dW", "db"), kwargs={"stride": stride, "pad": pad}, n=xs[0],
                                numeric_forward=conv.conv2d_forward))
    return cases


def _conv_variant(dy, cache, *, stride_used=True, rotate_missing=False, crop=True, accumulate=True):
    """The naive backward with one usual mistake switched on (the defaults are right)."""
    x, W, s, pad = cache.x, cache.W, cache.stride, cache.pad
    step = s if stride_used else 1
    _, _, kh, kw = W.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    Wx = W[:, :, ::-1, ::-1] if rotate_missing else W  # what dx is built from
    dxp, dW = np.zeros_like(xp), np.zeros_like(W)
    for n, f, i, j in np.ndindex(dy.shape):
        rows, cols = slice(i * step, i * step + kh), slice(j * step, j * step + kw)
        if accumulate:
            dxp[n, :, rows, cols] += dy[n, f, i, j] * Wx[f]
        else:
            dxp[n, :, rows, cols] = dy[n, f, i, j] * Wx[f]
        dW[f] += dy[n, f, i, j] * xp[n, :, rows, cols]
    dx = dxp[:, :, pad:pad + x.shape[2], pad:pad + x.shape[3]] if crop else dxp
    return dx, dW, dy.sum(axis=(0, 2, 3))


_register(Exercise(
    "conv2d_naive_backward", "conv2d_naive_backward(dy, cache) -> (dx, dW, db)", ("dy", "cache"), _conv_cases,
    (Mistake("stride ignored: window (i, j) starts at row i * stride and column j * stride of the padded input",
             lambda dy, c: _conv_variant(dy, c, stride_used=False)),
     Mistake("the kernel is not rotated: dx is the full convolution of dy with the kernel rotated by 180 degrees "
             "(or, as a scatter, dy[n, f, i, j] W[f] added onto each window)", lambda dy, c: _conv_variant(dy, c, rotate_missing=True)),
     Mistake("the padding is still there: dx is the gradient of the padded input with its pad rows and columns cut off",
             lambda dy, c: _conv_variant(dy, c, crop=False)),
     Mistake("overlapping windows overwrite each other (= instead of +=): a pixel in several windows gets the sum",
             lambda dy, c: _conv_variant(dy, c, accumulate=False))),
    outputs=("dx", "dW", "db")))


# (x shape, size, stride): windows that tile, overlap (stride < size), leave gaps (stride > size)
# or leave the last rows out.
_POOL_SETTINGS = (((2, 3, 6, 6), 2, 2), ((1, 2, 7, 5), 2, 2), ((2, 2, 7, 7), 3, 2), ((1, 3, 5, 6), 2, 1),
                  ((2, 1, 7, 8), 3, 3), ((1, 2, 8, 7), 2, 3))


def _distinct(rng, shape):
    """Entries at least 0.05 apart (no ties, so every window has one argmax), in a random order."""
    k = int(np.prod(shape))
    return ((rng.permutation(k) - k / 2) * 0.1 + rng.uniform(0, 0.05, k)).reshape(shape)


def _pool_cases(rng, dtype):
    cases = []
    for xs, size, stride in _POOL_SETTINGS:
        label = f"x {xs}, size {size}, stride {stride}"
        cases.append(_pair_case(rng, dtype, label, conv.maxpool_forward, conv.maxpool_backward, (_distinct(rng, xs),), ("dx",),
                                kwargs={"size": size, "stride": stride}))
    return cases


def _pool_variant(dout, cache, *, spread=False, accumulate=True, stride_used=True):
    x, size, s = cache.x, cache.size, cache.stride
    step = s if stride_used else 1
    dx = np.zeros_like(x)
    for n, ch, i, j in np.ndindex(dout.shape):
        rows, cols = slice(i * step, i * step + size), slice(j * step, j * step + size)
        window = x[n, ch, rows, cols]
        share = np.full(window.shape, 1.0 / window.size) if spread else (window == window.max())
        if accumulate:
            dx[n, ch, rows, cols] += share * dout[n, ch, i, j]
        else:
            dx[n, ch, rows, cols] = share * dout[n, ch, i, j]
    return dx


_register(Exercise(
    "maxpool_backward", "maxpool_backward(dout, cache) -> dx", ("dout", "cache"), _pool_cases,
    (Mistake("the gradient is spread over the whole window (the backward of average pooling); "
             "max pooling sends it all to the window's argmax", lambda d, c: _pool_variant(d, c, spread=True)),
     Mistake("overlapping windows overwrite each other (= instead of +=): where windows overlap, a pixel that is the "
             "argmax of two windows gets both gradients", lambda d, c: _pool_variant(d, c, accumulate=False)),
     Mistake("stride ignored: window (i, j) starts at row i * stride and column j * stride",
             lambda d, c: _pool_variant(d, c, stride_used=False))),
    outputs=("dx",)))


def check_conv2d_naive_backward(fn, *, dtype=np.float64, seed=0):
    """dW[f] = sum_{n,i,j} dy[n,f,i,j] window(n,i,j), db[f] = sum dy[:,f], dxp[window(n,i,j)] += dy[n,f,i,j] W[f].

    Checks the reader's conv2d_naive_backward(dy, cache) for every stride 1, 2, 3
    with every padding 0, 1, 2, against conv.conv2d_naive_backward and central
    differences of conv.conv2d_forward.
    Parameters: fn, called as fn(dy, cache) with dy (N, F, Ho, Wo) and cache from
    conv.conv2d_naive_forward (cache.x (N, C, H, W), cache.W (F, C, kh, kw),
    cache.stride, cache.pad), returning (dx, dW, db); dtype, np.float64 or np.float32;
    seed, an integer >= 0. Returns: a CheckResult. Exercise of chapter 7.
    """
    return _check(EXERCISES["conv2d_naive_backward"], fn, dtype, seed, "check_conv2d_naive_backward")


def check_maxpool_backward(fn, *, dtype=np.float64, seed=0):
    """dx[argmax of window (i, j)] += dout[n, c, i, j]: check the reader's maxpool_backward(dout, cache).

    Windows that tile, overlap, leave gaps or leave the last rows out; inputs without
    ties. Parameters: fn, called as fn(dout, cache) with dout (N, C, Ho, Wo) and cache
    from conv.maxpool_forward (cache.x (N, C, H, W), cache.size, cache.stride, and
    cache.idx, the argmax of each window as p * size + q), returning dx (N, C, H, W);
    dtype, np.float64 or np.float32; seed, an integer >= 0.
    Returns: a CheckResult. Exercise of chapter 7.
    """
    return _check(EXERCISES["maxpool_backward"], fn, dtype, seed, "check_maxpool_backward")


# --------------------------------------------------------------------------------------
# Chapter 8: the RNN step, backpropagation through time, the LSTM step


def _rnn_weights(rng, D, Dh, gates=1):
    """Wx (D, gates Dh), Wh (Dh, gates Dh), b (gates Dh,), scaled so that tanh does not saturate."""
    return (rng.standard_normal((D, gates * Dh)) / np.sqrt(D), rng.standard_normal((Dh, gates * Dh)) / np.sqrt(Dh),
            0.1 * rng.standard_normal(gates * Dh))


_RNN_STEP_SHAPES = ((4, 5, 3), (1, 3, 4), (3, 4, 4), (5, 2, 6))  # (N, D, Dh)


def _rnn_step_cases(rng, dtype):
    return [_pair_case(rng, dtype, _shape_text(x=(N, D), h_prev=(N, Dh)), rnn.rnn_step_forward, rnn.rnn_step_backward,
                       (rng.standard_normal((N, D)), rng.standard_normal((N, Dh))) + _rnn_weights(rng, D, Dh),
                       ("dx", "dh_prev", "dWx", "dWh", "db"), n=N) for N, D, Dh in _RNN_STEP_SHAPES]


def _rnn_step_variant(dh, c, *, prime=lambda c: 1 - c.h_next**2, transpose_h=True):
    da = dh * prime(c)
    return (da @ c.Wx.T, da @ (c.Wh.T if transpose_h else c.Wh), c.x.T @ da, c.h_prev.T @ da, da.sum(axis=0))


_register(Exercise(
    "rnn_step_backward", "rnn_step_backward(dh_next, cache) -> (dx, dh_prev, dWx, dWh, db)", ("dh_next", "cache"),
    _rnn_step_cases,
    (Mistake("1 - h_prev^2: tanh' belongs to this step's output, 1 - h_next^2 (the wrong cached value)",
             lambda dh, c: _rnn_step_variant(dh, c, prime=lambda c: 1 - c.h_prev**2)),
     Mistake("the derivative of tanh is missing: da = dh_next * (1 - h_next^2)",
             lambda dh, c: _rnn_step_variant(dh, c, prime=lambda c: 1.0)),
     Mistake("dh_prev = da Wh without the transpose: h_prev enters as h_prev Wh, so dh_prev = da Wh^T",
             lambda dh, c: _rnn_step_variant(dh, c, transpose_h=False))),
    outputs=("dx", "dh_prev", "dWx", "dWh", "db")))

_RNN_SHAPES = ((2, 4, 3, 5), (1, 1, 2, 3), (3, 5, 4, 4), (2, 3, 1, 2))  # (N, T, D, Dh)


def _rnn_cases(rng, dtype):
    return [_pair_case(rng, dtype, _shape_text(x=(N, T, D), h0=(N, Dh)), rnn.rnn_forward, rnn.rnn_backward,
                       (rng.standard_normal((N, T, D)), rng.standard_normal((N, Dh))) + _rnn_weights(rng, D, Dh),
                       ("dx", "dh0", "dWx", "dWh", "db"), n=N) for N, T, D, Dh in _RNN_SHAPES]


def _bptt_variant(dh, cache, *, carry=True, accumulate=True, forward_in_time=False):
    steps = cache.steps
    T = len(steps)
    dx = np.zeros(dh.shape[:2] + (steps[0].Wx.shape[0],))
    dWx, dWh, db = np.zeros_like(steps[0].Wx), np.zeros_like(steps[0].Wh), np.zeros(steps[0].Wh.shape[1])
    dh_carry = np.zeros_like(steps[0].h_prev)
    for t in (range(T) if forward_in_time else reversed(range(T))):
        dx[:, t], dh_prev, dWx_t, dWh_t, db_t = rnn.rnn_step_backward(dh[:, t] + dh_carry, steps[t])
        if accumulate:
            dWx, dWh, db = dWx + dWx_t, dWh + dWh_t, db + db_t
        else:
            dWx, dWh, db = dWx_t, dWh_t, db_t
        dh_carry = dh_prev if carry else np.zeros_like(dh_prev)
    return dx, dh_prev, dWx, dWh, db


_register(Exercise(
    "rnn_backward", "rnn_backward(dh, cache) -> (dx, dh0, dWx, dWh, db)", ("dh", "cache"), _rnn_cases,
    (Mistake("nothing is carried back in time: step t receives dh[:, t] plus the dh_prev that step t + 1 sent back",
             lambda dh, c: _bptt_variant(dh, c, carry=False)),
     Mistake("one step's share only (= instead of +=): a weight shared by every step gets the sum of their gradients",
             lambda dh, c: _bptt_variant(dh, c, accumulate=False)),
     Mistake("the loop runs forward in time: BPTT visits t = T - 1, ..., 0, so that what step t + 1 sends back is ready",
             lambda dh, c: _bptt_variant(dh, c, forward_in_time=True))),
    outputs=("dx", "dh0", "dWx", "dWh", "db")))

_LSTM_SHAPES = ((2, 3, 4), (1, 5, 2), (4, 4, 3), (3, 2, 5))  # (N, D, Dh)


def _lstm_forward(x, h_prev, c_prev, Wx, Wh, b):
    h, c, cache = rnn.lstm_step_forward(x, h_prev, c_prev, Wx, Wh, b)
    return (h, c), cache


def _lstm_cases(rng, dtype):
    return [_pair_case(rng, dtype, _shape_text(x=(N, D), h_prev=(N, Dh)), _lstm_forward, rnn.lstm_step_backward,
                       (rng.standard_normal((N, D)), rng.standard_normal((N, Dh)), rng.standard_normal((N, Dh)))
                       + _rnn_weights(rng, D, Dh, gates=4), ("dx", "dh_prev", "dc_prev", "dWx", "dWh", "db"), n=N)
            for N, D, Dh in _LSTM_SHAPES]


def _lstm_variant(dh, dc_next, c, *, through_h=True, order=(0, 1, 2, 3), forget=True, tc_as_c=False):
    i, f, g, o = (np.split(c.gates, 4, axis=1)[k] for k in order)
    tc = np.tanh(c.tc) if tc_as_c else c.tc
    dc = dc_next + (dh * o * (1 - tc * tc) if through_h else 0.0)
    parts = {"i": dc * g * i * (1 - i), "f": dc * c.c_prev * f * (1 - f), "g": dc * i * (1 - g * g), "o": dh * tc * o * (1 - o)}
    da_parts = [None] * 4
    for k, name in zip(order, "ifgo"):
        da_parts[k] = parts[name]
    da = np.concatenate(da_parts, axis=1)
    return da @ c.Wx.T, da @ c.Wh.T, dc * f if forget else dc, c.x.T @ da, c.h_prev.T @ da, da.sum(axis=0)


_register(Exercise(
    "lstm_step_backward", "lstm_step_backward(dh_next, dc_next, cache) -> (dx, dh_prev, dc_prev, dWx, dWh, db)",
    ("dh_next", "dc_next", "cache"), _lstm_cases,
    (Mistake("dc misses the path through h_next: c_next reaches the loss directly and through h_next = o tanh(c_next), "
             "so dc = dc_next + dh_next o (1 - tanh^2 c_next)", lambda dh, dc, c: _lstm_variant(dh, dc, c, through_h=False)),
     Mistake("the gates in the wrong order: the 4Dh columns hold i, f, g, o",
             lambda dh, dc, c: _lstm_variant(dh, dc, c, order=(0, 1, 3, 2))),
     Mistake("dc_prev = dc: the old cell enters as f * c_prev, so dc_prev = dc * f",
             lambda dh, dc, c: _lstm_variant(dh, dc, c, forget=False)),
     Mistake("tanh applied to cache.tc, which already is tanh(c_next) (the wrong cached value)",
             lambda dh, dc, c: _lstm_variant(dh, dc, c, tc_as_c=True))),
    outputs=("dx", "dh_prev", "dc_prev", "dWx", "dWh", "db")))


def check_rnn_step_backward(fn, *, dtype=np.float64, seed=0):
    """da = dh_next (1 - h_next^2); dx = da Wx^T, dh_prev = da Wh^T, dWx = x^T da, dWh = h_prev^T da, db = sum_n da.

    Parameters: fn, called as fn(dh_next, cache) with dh_next (N, Dh) and cache from
    rnn.rnn_step_forward (cache.x, cache.h_prev, cache.Wx, cache.Wh, cache.h_next),
    returning (dx, dh_prev, dWx, dWh, db); dtype, np.float64 or np.float32; seed, an
    integer >= 0. Returns: a CheckResult. Exercise of chapter 8.
    """
    return _check(EXERCISES["rnn_step_backward"], fn, dtype, seed, "check_rnn_step_backward")


def check_rnn_backward(fn, *, dtype=np.float64, seed=0):
    """BPTT: step t gets dh_t plus what step t + 1 sent back; dWx, dWh, db sum over t: check the reader's rnn_backward.

    Parameters: fn, called as fn(dh, cache) with dh (N, T, Dh) and cache from
    rnn.rnn_forward (cache.steps, one rnn_step_forward cache per step), returning
    (dx (N, T, D), dh0 (N, Dh), dWx, dWh, db); it may call rnn.rnn_step_backward;
    dtype, np.float64 or np.float32; seed, an integer >= 0.
    Returns: a CheckResult. Exercise of chapter 8.
    """
    return _check(EXERCISES["rnn_backward"], fn, dtype, seed, "check_rnn_backward")


def check_lstm_step_backward(fn, *, dtype=np.float64, seed=0):
    """dc = dc_next + dh_next o tanh'(c_next); the gate gradients; then the linear layer's backward.

    Checks the reader's lstm_step_backward(dh_next, dc_next, cache).
    Parameters: fn, called as fn(dh_next, dc_next, cache) with dh_next, dc_next (N, Dh)
    and cache from rnn.lstm_step_forward (cache.x, h_prev, c_prev, Wx, Wh, gates
    (N, 4Dh) in the order i, f, g, o, and tc = tanh(c_next)), returning (dx, dh_prev,
    dc_prev, dWx, dWh, db); dtype, np.float64 or np.float32; seed, an integer >= 0.
    Returns: a CheckResult. Exercise of chapter 8.
    """
    return _check(EXERCISES["lstm_step_backward"], fn, dtype, seed, "check_lstm_step_backward")


# --------------------------------------------------------------------------------------
# Chapter 9: batch normalization in training mode, through the graph and by the formula

_BN_SHAPES = ((5, 4), (8, 3), (3, 1), (6, 6), (2, 5))  # (N, D); N = 2, the smallest batch, last


def _bn_forward(x, gamma, beta):
    D = x.shape[1]
    out, _, _, cache = norm.batchnorm_forward(x, gamma, beta, np.zeros(D), np.ones(D))
    return out, cache


def _bn_cases(rng, dtype):
    cases = []
    for N, D in _BN_SHAPES:
        x = rng.normal(rng.normal(0, 3, D), rng.uniform(0.5, 3, D), (N, D))  # features of different means and scales
        cases.append(_pair_case(rng, dtype, f"x {(N, D)}", _bn_forward, norm.batchnorm_backward,
                                (x, rng.normal(1, 0.5, D), rng.standard_normal(D)), ("dx", "dgamma", "dbeta"), n=N))
    return cases


def _bn_variant(dout, c, *, mean_path=True, var_path=True, unbiased=False, dgamma_xhat=True):
    n = dout.shape[0]
    dxhat = dout * c.gamma
    dvar = np.sum(dxhat * c.xc, axis=0) * -0.5 * c.inv**3
    dvar = dvar * (n / (n - 1) if unbiased else 1.0)
    dx = dxhat * c.inv + (dvar * 2 * c.xc / n if var_path else 0.0)
    if mean_path:
        dx = dx - dx.mean(axis=0)
    dgamma = np.sum(dout * c.xhat, axis=0) if dgamma_xhat else np.sum(dout, axis=0)
    return dx, dgamma, dout.sum(axis=0)


_BN_MISTAKES = (
    Mistake("the path through the mean is missing: mu depends on every x_n, which adds -(1/N) sum_n of the other terms",
            lambda d, c: _bn_variant(d, c, mean_path=False)),
    Mistake("the path through the variance is missing: var depends on every x_n too", lambda d, c: _bn_variant(d, c, var_path=False)),
    Mistake("mu and var treated as constants: dx = gamma inv dout is the gradient of inference mode; in training the "
            "batch statistics depend on x", lambda d, c: _bn_variant(d, c, mean_path=False, var_path=False)),
    Mistake("the unbiased variance (1/(N - 1)): the forward normalizes with the biased one, 1/N",
            lambda d, c: _bn_variant(d, c, unbiased=True)),
    Mistake("dgamma = sum_n dout: out = gamma xhat + beta, so dgamma = sum_n dout xhat", lambda d, c: _bn_variant(d, c, dgamma_xhat=False)),
)

_register(Exercise(
    "batchnorm_backward_steps", "batchnorm_backward_steps(dout, cache) -> (dx, dgamma, dbeta)", ("dout", "cache"),
    _bn_cases, _BN_MISTAKES, outputs=("dx", "dgamma", "dbeta")))

_register(Exercise(
    "batchnorm_backward", "batchnorm_backward(dout, cache) -> (dx, dgamma, dbeta)", ("dout", "cache"),
    _bn_cases, _BN_MISTAKES, outputs=("dx", "dgamma", "dbeta")))


def check_batchnorm_backward_steps(fn, *, dtype=np.float64, seed=0):
    """dx, dgamma, dbeta of y = gamma (x - mu) / sqrt(var + eps) + beta, node by node: check the reader's version.

    Training mode, batch statistics. Parameters: fn, called as fn(dout, cache) with
    dout (N, D) and cache from norm.batchnorm_forward (cache.xc = x - mu, cache.std,
    cache.inv = 1 / std, cache.xhat, cache.gamma), returning (dx (N, D), dgamma (D,),
    dbeta (D,)); dtype, np.float64 or np.float32; seed, an integer >= 0.
    Returns: a CheckResult. Exercise of chapter 9.
    """
    return _check(EXERCISES["batchnorm_backward_steps"], fn, dtype, seed, "check_batchnorm_backward_steps")


def check_batchnorm_backward(fn, *, dtype=np.float64, seed=0):
    """dx = (1/N) gamma inv [N dout - sum_n dout - xhat sum_n (dout xhat)]: check the reader's compact batchnorm_backward.

    Parameters: fn, called as fn(dout, cache) with dout (N, D) and cache from
    norm.batchnorm_forward in training mode, returning (dx, dgamma, dbeta);
    dtype, np.float64 or np.float32; seed, an integer >= 0.
    Returns: a CheckResult. Exercise of chapter 9.
    """
    return _check(EXERCISES["batchnorm_backward"], fn, dtype, seed, "check_batchnorm_backward")


# --------------------------------------------------------------------------------------
# Chapter 10: a vector-Jacobian rule for a new Tape op, and a curvature rule for Hv
#
# The reader's rule is registered in autodiff.OPS for the length of one run, and the
# real Tape replays it; bplib's answer comes from the same programs written with the
# library's own ops.


class ScaleCache(NamedTuple):
    """What scale_backward needs: x (N, D) and g (D,).

    Unlike the caches of the op modules it has no ``made_by``: no backward of bplib
    reads it (the reader writes that backward), so there is no mix-up to refuse.
    """

    x: np.ndarray
    g: np.ndarray


def scale_forward(x, g):
    """out = x g: every feature d of every example scaled by g_d (the gamma of batch and layer norm).

    Parameters: x (N, D); g (D,). Returns: (out, cache), out (N, D); the cache keeps x and g.
    The op of the chapter 10 practice exercise, whose backward the reader writes.
    """
    x = as_float_array("scale_forward", "x", x, ndim=2)
    g = as_float_array("scale_forward", "g", g, ndim=1)
    check_shape("scale_forward", "g", g, (x.shape[1],))
    return x * g, ScaleCache(x, g)


def _scale_jvp(c, tx, tg):
    """The product rule, d(x g) = dx g + x dg; a missing tangent (None) is zero."""
    terms = [t for t in (None if tx is None else tx * c.g, None if tg is None else c.x * tg) if t is not None]
    return sum(terms[1:], terms[0]) if terms else None


class _Program(NamedTuple):
    label: str
    inputs: dict  # name -> array
    target: np.ndarray  # the loss's target t, a constant
    build: Callable  # (tape, nodes by name, t[, scale(u, g_node) -> node]) -> the loss node


def _scale_programs(rng):
    def arrays(**shapes):
        return {k: rng.standard_normal(s) for k, s in shapes.items()}

    def p1(tp, n, t, scale):
        return tp.apply("half_squared_error", scale(n["x"], n["g"]), t=t)

    def p2(tp, n, t, scale):
        return tp.apply("half_squared_error", tp.apply("tanh", scale(tp.apply("linear", n["x"], n["W"], n["b"]), n["g"])), t=t)

    def p3(tp, n, t, scale):  # g used twice: the tape sums its two gradients
        return tp.apply("half_squared_error", scale(tp.apply("tanh", scale(n["x"], n["g"])), n["g"]), t=t)

    return (_Program("scale(x, g), x (3, 5)", arrays(x=(3, 5), g=(5,)), rng.standard_normal((3, 5)), p1),
            _Program("tanh(scale(linear(x, W, b), g)), x (4, 6), W (6, 3)", arrays(x=(4, 6), W=(6, 3), b=(3,), g=(3,)),
                     rng.standard_normal((4, 3)), p2),
            _Program("scale(tanh(scale(x, g)), g), g used twice, x (5, 4)", arrays(x=(5, 4), g=(4,)),
                     rng.standard_normal((5, 4)), p3),
            _Program("tanh(scale(linear(x, W, b), g)), x (1, 2), W (2, 3)", arrays(x=(1, 2), W=(2, 3), b=(3,), g=(3,)),
                     rng.standard_normal((1, 3)), p2))


def _library_scale(tp, nodes):
    """scale(u, g) as the library's linear op: u g = u diag(g) + 0, with nodes['g'] holding diag(g)."""
    zero = tp.input(np.zeros(nodes["g"].shape[0]), "zero")
    return lambda u, G: tp.apply("linear", u, G, zero)


def _program_value(program, arrays, target, name, value):
    """The program's loss with arrays[name] replaced by value, through the library's ops."""
    tp = Tape()
    nodes = {k: tp.input(np.diag(v) if k == "g" else v, k) for k, v in {**arrays, name: value}.items()}
    return program.build(tp, nodes, target, _library_scale(tp, nodes)).value


def _scale_cases(rng, dtype):
    cases = []
    for program in _scale_programs(rng):
        a64, t64 = {k: _f64(_in_dtype(v, dtype)) for k, v in program.inputs.items()}, _f64(_in_dtype(program.target, dtype))
        tp = Tape()
        nodes = {k: tp.input(np.diag(v) if k == "g" else v, k) for k, v in a64.items()}
        grads = tp.backward(program.build(tp, nodes, t64, _library_scale(tp, nodes)))
        expected = {f"d{k}": np.diag(grads["g"]) if k == "g" else grads[k] for k in a64}
        numeric = {f"d{k}": numerical_gradient(functools.partial(_program_value, program, a64, t64, k), a64[k]) for k in a64}
        args = (program, {k: _in_dtype(v, dtype) for k, v in a64.items()}, _in_dtype(t64, dtype))
        cases.append(Case(program.label, args, expected, numeric, program.inputs["x"].shape[0]))
    return cases


class _Registered:
    """OPS[name] = op while a check runs; the table is restored on exit."""

    def __init__(self, name, op):
        self.name, self.op = name, op

    def __enter__(self):
        self.saved = autodiff.OPS.get(self.name)
        autodiff.OPS[self.name] = self.op

    def __exit__(self, *exc):
        if self.saved is None:
            del autodiff.OPS[self.name]
        else:
            autodiff.OPS[self.name] = self.saved


def _guarded(ex, fn, count, changed):
    """fn wrapped for the tape: its arguments are checked for changes and its result must be a tuple of ``count``."""
    def rule(*args):
        before = copy.deepcopy(args)
        result = fn(*args)
        changed.extend(p for name, b, a in zip(ex.params, before, args) for p in _changed(name, b, a))
        if not isinstance(result, tuple) or len(result) != count:
            what = type(result).__name__ if not isinstance(result, tuple) else f"a tuple of {len(result)}"
            raise _Refused(f"{ex.name} returned {what}; the tape expects a tuple of {count}, one entry per argument of the op")
        return result
    return rule


def _scale_run(ex, fn, case):
    program, arrays, target = case.args
    changed = []
    op = autodiff.Op(scale_forward, _guarded(ex, fn, 2, changed), ("x", "g"), _scale_jvp)
    with _Registered("scale", op):
        tp = Tape()
        nodes = {k: tp.input(v.copy(), k) for k, v in arrays.items()}
        grads = tp.backward(program.build(tp, nodes, target, lambda u, g: tp.apply("scale", u, g)))
    return {f"d{k}": _array(f"d{k}", grads[k]) for k in arrays}, sorted(set(changed))


_register(Exercise(
    "scale_backward", "scale_backward(dout, cache) -> (dx, dg)", ("dout", "cache"),
    _scale_cases,
    (Mistake("dg not summed over the batch: g scales the feature d of every example, so dg = sum_n dout x",
             lambda d, c: (d * c.g, d * c.x)),
     Mistake("each input's own value: out = x g, so dx = dout g and dg = sum_n dout x", lambda d, c: (d * c.x, np.sum(d * c.g, axis=0))),
     Mistake("dg = sum_n dout: the factor x is missing, dg = sum_n dout x", lambda d, c: (d * c.g, d.sum(axis=0)))),
    run=_scale_run, reference="bplib"))


def _mlp_programs(rng):
    def sig_net(tp, n, t):
        h = tp.apply("sigmoid", tp.apply("linear", n["x"], n["W1"], n["b1"]))
        return tp.apply("half_squared_error", tp.apply("linear", h, n["W2"], n["b2"]), t=t)

    def two_sig(tp, n, t):
        h = tp.apply("sigmoid", tp.apply("linear", n["x"], n["W1"], n["b1"]))
        return tp.apply("half_squared_error", tp.apply("sigmoid", tp.apply("linear", h, n["W2"], n["b2"])), t=t)

    def logits(tp, n, t):
        h = tp.apply("sigmoid", tp.apply("linear", n["x"], n["W1"], n["b1"]))
        return tp.apply("bce_with_logits", tp.apply("linear", h, n["W2"], n["b2"]), t=t)

    def tied(tp, n, t):  # one W and one b used by both layers
        h = tp.apply("sigmoid", tp.apply("linear", n["x"], n["W"], n["b"]))
        return tp.apply("half_squared_error", tp.apply("sigmoid", tp.apply("linear", h, n["W"], n["b"])), t=t)

    def arrays(**shapes):
        return {k: rng.standard_normal(s) for k, s in shapes.items()}

    return (_Program("sigmoid hidden layer, x (4, 3), W1 (3, 5), W2 (5, 2)",
                     arrays(x=(4, 3), W1=(3, 5), b1=(5,), W2=(5, 2), b2=(2,)), rng.standard_normal((4, 2)), sig_net),
            _Program("two sigmoid layers, x (3, 2), W1 (2, 4), W2 (4, 3)",
                     arrays(x=(3, 2), W1=(2, 4), b1=(4,), W2=(4, 3), b2=(3,)), rng.random((3, 3)), two_sig),
            _Program("sigmoid, then bce_with_logits, x (5, 4), W1 (4, 3)",
                     arrays(x=(5, 4), W1=(4, 3), b1=(3,), W2=(3, 1), b2=(1,)), rng.random((5, 1)), logits),
            _Program("W and b shared by two sigmoid layers, x (2, 4)", arrays(x=(2, 4), W=(4, 4), b=(4,)),
                     rng.random((2, 4)), tied))


def _hvp_tape(program, arrays, target):
    tp = Tape()
    nodes = {k: tp.input(v, k) for k, v in arrays.items()}
    return tp, program.build(tp, nodes, target)


def _grad_along(program, arrays, target, v, e):
    """The gradient at arrays + e v, by the tape."""
    tp, loss = _hvp_tape(program, {k: a + e * v[k] for k, a in arrays.items()}, target)
    return tp.backward(loss)


def _hvp_cases(rng, dtype):
    cases, h = [], 1e-5
    for program in _mlp_programs(rng):
        a64, t64 = {k: _f64(_in_dtype(v, dtype)) for k, v in program.inputs.items()}, _f64(_in_dtype(program.target, dtype))
        v = {k: _f64(_in_dtype(rng.standard_normal(a.shape), dtype)) for k, a in a64.items()}
        tp, loss = _hvp_tape(program, a64, t64)
        expected = {f"Hv[{k}]": g for k, g in tp.hvp(loss, v).items()}
        plus, minus = _grad_along(program, a64, t64, v, h), _grad_along(program, a64, t64, v, -h)
        numeric = {f"Hv[{k}]": (plus[k] - minus[k]) / (2 * h) for k in a64}
        args = (program, {k: _in_dtype(a, dtype) for k, a in a64.items()}, _in_dtype(t64, dtype),
                {k: _in_dtype(t, dtype) for k, t in v.items()})
        cases.append(Case(program.label, args, expected, numeric))
    return cases


def _hvp_run(ex, fn, case):
    program, arrays, target, v = case.args
    changed = []
    op = autodiff.OPS["sigmoid"]._replace(curvature=_guarded(ex, fn, 1, changed))
    with _Registered("sigmoid", op):
        tp, loss = _hvp_tape(program, {k: a.copy() for k, a in arrays.items()}, target)
        hv = tp.hvp(loss, {k: t.copy() for k, t in v.items()})
    return {f"Hv[{k}]": _array(f"Hv[{k}]", g) for k, g in hv.items()}, sorted(set(changed))


_register(Exercise(
    "sigmoid_curvature", "sigmoid_curvature(dout, cache, tangents, out_tangent) -> (extra,)",
    ("dout", "cache", "tangents", "out_tangent"), _hvp_cases,
    (Mistake("no curvature term: x-bar = y-bar y (1 - y) also changes because y moves, by y-bar (1 - 2y) y-dot",
             lambda d, c, ts, to: (None,)),
     Mistake("y (1 - y) where its derivative 1 - 2y belongs: d/dy [y (1 - y)] = 1 - 2y",
             lambda d, c, ts, to: (d * c.out * (1 - c.out) * to,)),
     Mistake("the input's tangent x-dot where the output's y-dot belongs (y-dot = y (1 - y) x-dot)",
             lambda d, c, ts, to: (d * (1 - 2 * c.out) * ts[0],)),
     Mistake("a wrong sign in the curvature term: d/dy [y (1 - y)] = 1 - 2y", lambda d, c, ts, to: (-d * (1 - 2 * c.out) * to,))),
    run=_hvp_run, reference="bplib"))


def check_scale_backward(fn, *, dtype=np.float64, seed=0):
    """dx = dout g, dg = sum_n dout x: check the reader's VJP rule scale_backward(dout, cache) inside the Tape.

    The rule is registered in autodiff.OPS as the op 'scale' (forward scale_forward) for
    the length of the check; four programs on a Tape use it (g used twice in one),
    and their gradients are compared with the same programs written with the library's
    linear op (x g = x diag(g)) and with central differences.
    Parameters: fn, called by the tape as fn(dout, cache) with dout (N, D) and cache
    from scale_forward (cache.x (N, D), cache.g (D,)), returning (dx, dg); dtype,
    np.float64 or np.float32; seed, an integer >= 0. Returns: a CheckResult.
    Exercise of chapter 10.
    """
    return _check(EXERCISES["scale_backward"], fn, dtype, seed, "check_scale_backward")


def check_sigmoid_curvature(fn, *, dtype=np.float64, seed=0):
    """R_v{x-bar} = R_v{y-bar} y (1 - y) + y-bar (1 - 2y) y-dot: check the reader's curvature rule of the sigmoid.

    The rule replaces the curvature entry of OPS['sigmoid'] for the length of the check;
    Tape.hvp computes Hessian-vector products of four small networks, compared with
    bplib's own rule and with central differences of the gradient along v.
    Parameters: fn, called as fn(dout, cache, tangents, out_tangent) with dout the
    adjoint y-bar, cache.out = y, tangents = [x-dot] and out_tangent = y-dot, all of the
    shape of y, returning a tuple (extra,) with the term from y moving (or (None,));
    dtype, np.float64 or np.float32; seed, an integer >= 0.
    Returns: a CheckResult. Exercise of chapter 10.
    """
    return _check(EXERCISES["sigmoid_curvature"], fn, dtype, seed, "check_sigmoid_curvature")
