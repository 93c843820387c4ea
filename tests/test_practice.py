"""Tests of bplib.practice and of the practice notebooks (CONTRIBUTING.md, "Practice notebooks").

- every checker accepts the solution published in its notebook, in float64 and, run
  on float32 inputs (where it computes in float32), with the float32 tolerance;
- every checker refuses deliberately wrong implementations, written here as a reader
  would write them, and names the mistake (or states the shapes);
- a function that raises NotImplementedError is reported as not done, never raised;
- bplib's answers agree with central differences on every case (the checker's own
  references are right), and the checkers validate their arguments;
- tools/make_practice.py writes starter copies that run headless in a fresh kernel,
  every check saying "not done yet".
"""

import asyncio
import contextlib
import importlib.util
import io
import json
import pathlib

import nbformat
import numpy as np
import pytest

from bplib import activations, autodiff, practice, rnn
from bplib.scalar import Value

ROOT = pathlib.Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "chapters" / "practice").glob("*.ipynb"))
NAMES = sorted(practice.EXERCISES)
VALUE_RULES = {"add_local_grads", "mul_local_grads", "pow_local_grads", "tanh_local_grads", "topological_order"}


def _load_tool():
    spec = importlib.util.spec_from_file_location("make_practice", ROOT / "tools" / "make_practice.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


TOOL = _load_tool()


def _source(cell):
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def _solutions():
    """Run every notebook's code cells but its checks, and return the functions it defines, by name."""
    found = {}
    for path in NOTEBOOKS:
        namespace = {}
        for cell in json.loads(path.read_text())["cells"]:
            if cell["cell_type"] == "code" and "practice.check_" not in _source(cell):
                with contextlib.redirect_stdout(io.StringIO()):  # a cell may print
                    exec(compile(_source(cell), str(path), "exec"), namespace)  # noqa: S102 - our own notebooks
        found |= {name: namespace[name] for name in NAMES if name in namespace}
    return found


SOLUTIONS = _solutions()


def checker(name):
    return getattr(practice, f"check_{name}")


def run_check(name, fn, capsys, **kwargs):
    result = checker(name)(fn, **kwargs)
    printed = capsys.readouterr().out
    assert printed.strip() == result.report
    return result


# ----------------------------------------------------------------------------------------
# The exercises, their notebooks and their solutions


def test_every_exercise_has_a_checker_a_notebook_and_a_solution():
    checkers = {n.removeprefix("check_") for n, f in vars(practice).items()
                if n.startswith("check_") and getattr(f, "__module__", None) == practice.__name__}
    assert checkers == set(NAMES) == set(SOLUTIONS)
    assert len(NAMES) >= 25 and len(NOTEBOOKS) == 10


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_structure(path):
    """Each exercise: a stub, its solution (tagged, in a gated dropdown), then a check cell that calls its checker."""
    nb = json.loads(path.read_text())
    assert TOOL.stub_problems(nb) == []
    cells = nb["cells"]
    number = int(path.stem[:2])
    assert _source(cells[0]).startswith(f"(practice-ch{number})=\n# Practice {number}:")
    checks = [c for c in cells if c["cell_type"] == "code" and "practice.check_" in _source(c) and "wrong" not in _source(c)]
    stubs = [name for c in cells if c["cell_type"] == "code" and "solution" not in TOOL.tags(c)
             for name, (_, body) in TOOL.functions(_source(c)).items() if TOOL.is_stub(body)]
    assert len(stubs) >= 2 and len(checks) == len(stubs)
    for name, check in zip(stubs, checks):
        assert " ".join(_source(check).split()).replace("( ", "(") == f"practice.check_{name}({name})"
    for cell in cells:
        text = _source(cell)
        if "{solution-start}" in text or "{solution-end}" in text:
            assert TOOL.tags(cell) == {"solution"}, text[:60]


@pytest.mark.parametrize("name", NAMES)
def test_published_solution_passes(name, capsys):
    result = run_check(name, SOLUTIONS[name], capsys)
    assert result and result.status == "passed" and not result.failures
    assert "WRONG" not in result.report


def _float_arrays(value):
    if isinstance(value, np.ndarray):
        return [value] if value.dtype.kind == "f" else []
    if isinstance(value, (tuple, list)):
        return [a for v in value for a in _float_arrays(v)]
    return []


@pytest.mark.parametrize("name", NAMES)
def test_solution_passes_in_float32(name, capsys):
    """The published solution, given float32 inputs, computes in float32 and passes with the float32 tolerance."""
    outputs = []

    def recording(*args):
        out = SOLUTIONS[name](*args)
        outputs.append(out)
        return out

    result = run_check(name, recording, capsys, dtype=np.float32)
    assert result, result.report
    assert "float32" in result.report.splitlines()[0]
    arrays = [a for out in outputs for a in _float_arrays(out)]
    if name not in VALUE_RULES:  # Value's rules return Python floats
        assert arrays and all(a.dtype == np.float32 for a in arrays), {a.dtype for a in arrays}


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_bplib_agrees_with_central_differences(name, dtype):
    """The checker's two references agree on every case: neither can hide a wrong one."""
    tol = practice.TOLERANCES[np.dtype(np.float64)]["numeric"]
    for case in practice._cases(name, np.dtype(dtype).name, 0):
        assert case.expected, case.label
        for key, numeric in case.numeric.items():
            err = practice._errors(case.expected[key], numeric, tol)
            assert float(np.max(err, initial=0.0)) <= tol.rtol, (name, case.label, key)


def test_cases_cover_every_stride_and_padding():
    settings = {(c.label.split("stride ")[1]) for c in practice._cases("conv2d_naive_backward", "float64", 0)}
    assert settings == {f"{s}, pad {p}" for s in (1, 2, 3) for p in (0, 1, 2)}
    pools = [c.args[-1] for c in practice._cases("maxpool_backward", "float64", 0)]
    assert {(c.stride > c.size) - (c.stride < c.size) for c in pools} == {-1, 0, 1}  # overlap, tile, gaps


@pytest.mark.parametrize("name", NAMES)
def test_another_seed_gives_other_inputs(name, capsys):
    a, b = practice._cases(name, "float64", 0)[0], practice._cases(name, "float64", 3)[0]
    values = [x.shape != y.shape or not np.array_equal(x, y) for x, y in zip(a.expected.values(), b.expected.values())]
    assert a.label != b.label or any(values)
    assert run_check(name, SOLUTIONS[name], capsys, seed=3)


# ----------------------------------------------------------------------------------------
# Not done yet, bad arguments, the result


@pytest.mark.parametrize("name", NAMES)
def test_not_done_yet_is_reported_not_raised(name, capsys):
    def stub(*args):
        raise NotImplementedError

    result = run_check(name, stub, capsys)
    assert not result and result.status == "not done" and "not done yet" in result.report


@pytest.mark.parametrize("name", NAMES)
def test_checkers_validate_their_arguments(name):
    check = checker(name)
    with pytest.raises(TypeError, match=f"check_{name}: argument 'fn' must be a function, got int"):
        check(3)
    for dtype in (np.int32, "float16", None):
        with pytest.raises(TypeError, match=f"check_{name}: argument 'dtype' must be np.float64 or np.float32"):
            check(SOLUTIONS[name], dtype=dtype)
    with pytest.raises(ValueError, match=f"check_{name}: argument 'seed' must be at least 0, got -1"):
        check(SOLUTIONS[name], seed=-1)
    with pytest.raises(TypeError, match=f"check_{name}: argument 'seed' must be an integer"):
        check(SOLUTIONS[name], seed=1.5)


def test_result_object(capsys):
    good = practice.check_relu_backward(SOLUTIONS["relu_backward"])
    bad = practice.check_relu_backward(lambda d, c: d)
    capsys.readouterr()
    assert bool(good) is True and bool(bad) is False
    assert repr(good) == "CheckResult('relu_backward', 'passed')" and repr(bad) == "CheckResult('relu_backward', 'failed')"
    assert good._ipython_display_() is None and capsys.readouterr().out == ""  # a notebook shows nothing more


def test_an_error_in_the_readers_code_is_reported_with_its_line(capsys):
    def linear_backward(dy, cache):
        dx = dy @ cache.W  # the transpose is missing
        return dx, cache.x.T @ dy, dy.sum(axis=0)

    result = run_check("linear_backward", linear_backward, capsys)
    failure = result.failures["call"]
    assert "raised ValueError at `dx = dy @ cache.W  # the transpose is missing`" in failure.message
    assert "dx = dy W without the transpose" in failure.mistake  # a known mistake that raises the same error
    assert "case 1 of 5 (x (3, 5), W (5, 4))" in failure.case


def test_changing_an_argument_in_place_is_wrong(capsys):
    def sigmoid_backward(dout, cache):
        dx = dout * cache.out * (1 - cache.out)
        cache.out[...] = 0.0  # right answer, but the cache is spoiled
        return dx

    result = run_check("sigmoid_backward", sigmoid_backward, capsys)
    assert not result and list(result.failures) == ["arguments"]
    assert "changed cache.out in place" in result.failures["arguments"].message


def test_report_states_index_values_and_shapes(capsys):
    result = run_check("linear_backward", lambda dy, c: (dy @ c.W.T, c.x.T @ dy * 2, dy), capsys)
    assert "rel error 0.33 at index" in result.failures["dW"].message and "yours" in result.failures["dW"].message
    assert "central differences" in result.failures["dW"].message
    assert result.failures["db"].message == "shape (3, 4), expected (4,)"
    assert all(len(line) <= practice.WIDTH for line in result.report.splitlines()[1:])


def test_the_tape_and_value_are_restored_after_a_check(capsys):
    original_sigmoid = autodiff.OPS["sigmoid"]

    def boom(*args):
        raise RuntimeError("boom")

    for name in ("scale_backward", "sigmoid_curvature", "topological_order"):
        assert run_check(name, boom, capsys).failures["call"].message.startswith("raised RuntimeError")
    assert "scale" not in autodiff.OPS and autodiff.OPS["sigmoid"] is original_sigmoid
    assert Value.topological_order is practice._LIBRARY_ORDER


def test_scale_forward_values_and_bad_input():
    x, g = np.arange(6.0).reshape(2, 3), np.array([1.0, -2.0, 0.5])
    out, cache = practice.scale_forward(x, g)
    np.testing.assert_array_equal(out, [[0.0, -2.0, 1.0], [3.0, -8.0, 2.5]])
    assert cache.x is x and cache.g is g and isinstance(cache, practice.ScaleCache)
    with pytest.raises(ValueError, match=r"scale_forward: argument 'g' must have shape \(3,\), got \(2,\)"):
        practice.scale_forward(x, g[:2])
    with pytest.raises(ValueError, match="scale_forward: argument 'x' must have 2 dimensions, got shape"):
        practice.scale_forward(x.ravel(), g)
    with pytest.raises(TypeError, match="scale_forward: argument 'g' must have dtype float32 or float64"):
        practice.scale_forward(x, g.astype(complex))


# ----------------------------------------------------------------------------------------
# The generic diagnoses, on small arrays


@pytest.mark.parametrize(("yours", "expected", "words"), [
    (np.arange(6.0).reshape(3, 2), np.arange(6.0).reshape(3, 2).T.copy(), "missing transpose"),
    (np.ones((4, 3)), np.full(3, 4.0), "a forgotten sum over the batch"),
    (-np.arange(1.0, 4.0), np.arange(1.0, 4.0), "a wrong sign"),
    (np.arange(1.0, 4.0) * 4, np.arange(1.0, 4.0), "a missing 1/N (N = 4)"),
    (np.arange(1.0, 4.0) / 4, np.arange(1.0, 4.0), "an extra 1/N (N = 4)"),
    (np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([[1.0, 3.0], [2.0, 4.0]]), "missing transpose"),
    (np.zeros(3), np.arange(1.0, 4.0), "all zeros"),
    (np.arange(1.0, 4.0) * 2.5, np.arange(1.0, 4.0), "off by a constant factor 2.5"),
])
def test_generic_diagnoses(yours, expected, words):
    case = practice.Case("", (), {}, {}, n=4)
    assert words in practice._generic(yours, expected, case, practice.TOLERANCES[np.dtype(np.float64)]["match"])


def test_generic_diagnoses_name_nothing_they_do_not_know():
    case = practice.Case("", (), {}, {}, n=4, upstream=np.array([5.0, 6.0, 7.0]))
    tol = practice.TOLERANCES[np.dtype(np.float64)]["match"]
    assert practice._generic(np.array([1.0, 0.0, 3.0]), np.array([1.0, 2.0, 3.0]), case, tol) is None
    assert "upstream gradient passed through" in practice._generic(case.upstream, np.ones(3), case, tol)
    assert practice._generic(np.ones((2, 2)), np.ones(3), case, tol) is None


# ----------------------------------------------------------------------------------------
# Wrong implementations, as a reader would write them, and what the checker must say.
# Each entry: (exercise, wrong function, {gradient or 'call': words of the diagnosis}).


def _sig(z):
    return activations.sigmoid(z)


def _sce(c, dl=1.0, per_n=True):
    dz = c.s.copy()
    dz[np.arange(len(dz)), c.y] -= 1
    return dl * dz / (len(dz) if per_n else 1)


def _rnn_loop(dh, cache, carry=True, accumulate=True):
    steps, T = cache.steps, dh.shape[1]
    dx, total, back = [None] * T, [0.0, 0.0, 0.0], np.zeros_like(steps[0].h_prev)
    for t in reversed(range(T)):
        dx[t], back_t, *grads = rnn.rnn_step_backward(dh[:, t] + back, steps[t])
        total = [a + g for a, g in zip(total, grads)] if accumulate else grads
        back = back_t if carry else 0 * back_t
    return (np.stack(dx, axis=1), back_t, *total)


WRONG = [
    ("sigmoid_backward", lambda d, c: d * c.out, {"dx": "sigma instead of sigma'"}),
    ("sigmoid_backward", lambda d, c: d * activations.sigmoid_prime(c.out), {"dx": "wrong cached value"}),
    ("sigmoid_backward", lambda d, c: -d * c.out * (1 - c.out), {"dx": "a wrong sign"}),
    ("sigmoid_backward", lambda d, c: (d * c.out * (1 - c.out)).ravel(), {"dx": "shape (15,), expected (3, 5)"}),
    ("tanh_backward", lambda d, c: d * c.out, {"dx": "tanh instead of tanh'"}),
    ("tanh_backward", lambda d, c: d * (1 - np.tanh(c.out) ** 2), {"dx": "wrong cached value"}),
    ("tanh_backward", lambda d, c: d * (1 - c.out), {"dx": "the square is missing"}),
    ("tanh_backward", lambda d, c: (d * (1 - c.out**2)).T, {"dx": "missing transpose"}),
    ("relu_backward", lambda d, c: d, {"dx": "upstream gradient passed through unchanged"}),
    ("relu_backward", lambda d, c: d * np.maximum(c.x, 0), {"dx": "multiplied by relu(x)"}),
    ("relu_backward", lambda d, c: np.where(c.x < 0, d, 0.0), {"dx": "the mask is reversed"}),
    ("relu_backward", lambda d, c: np.where(c.x > 0, d, 0.0)[..., :1], {"dx": "shape (1,), expected (7,)"}),
    ("bce_with_logits_backward", lambda dl, c: dl * (_sig(c.z) - c.t), {"dz": "a missing 1/N (N = 5)"}),
    ("bce_with_logits_backward", lambda dl, c: (_sig(c.z) - c.t) / len(c.z), {"dz": "dloss is not multiplied in"}),
    ("bce_with_logits_backward", lambda dl, c: dl * (c.t - _sig(c.z)) / len(c.z), {"dz": "a wrong sign"}),
    ("bce_with_logits_backward", lambda dl, c: dl * (_sig(c.z) - c.t) / c.z.size, {"dz": "divided by the number of entries"}),
    ("bce_with_logits_backward", lambda dl, c: dl * (_sig(c.z) - c.t).sum(axis=0) / len(c.z), {"dz": "shape (), expected (1,)"}),
    ("add_local_grads", lambda a, b: (1.0, 0.0), {"y.grad": "only a gets a gradient"}),
    ("add_local_grads", lambda a, b: (b, a), {"x.grad": "the product rule"}),
    ("add_local_grads", lambda a, b: 1.0, {"call": "returned 1 value; a node with two parents"}),
    ("mul_local_grads", lambda a, b: (a, b), {"x.grad": "each input's own value"}),
    ("mul_local_grads", lambda a, b: (1.0, 1.0), {"x.grad": "the sum rule"}),
    ("mul_local_grads", lambda a, b: a * b, {"call": "returned 1 value"}),
    ("mul_local_grads", lambda a, b: (Value(b), a), {"call": "returned Value; each local derivative is a number"}),
    ("pow_local_grads", lambda a, k: k * a**k, {"x.grad": "the exponent must drop by one"}),
    ("pow_local_grads", lambda a, k: a ** (k - 1), {"x.grad": "the factor k is missing"}),
    ("pow_local_grads", lambda a, k: (k - 1) * a ** (k - 1), {"y.grad": "the factor is k"}),  # for k = 2 it is a**(k-1)
    ("pow_local_grads", lambda a, k: (k * a ** (k - 1), 0.0), {"call": "returned 2 values; a**k has one parent"}),
    ("tanh_local_grads", lambda a, out: 1 - a * a, {"x.grad": "wrong cached value"}),
    ("tanh_local_grads", lambda a, out: out, {"x.grad": "tanh instead of tanh'"}),
    ("tanh_local_grads", lambda a, out: 1 - out, {"x.grad": "the square is missing"}),
    ("tanh_local_grads", lambda a, out: (1 - out * out, 0.0), {"call": "returned 2 values"}),
    ("topological_order", practice._topo_reversed, {"call": "comes before its parent"}),
    ("topological_order", practice._topo_no_visited, {"call": "appears twice"}),
    ("topological_order", practice._topo_recursive, {"call": "recursion limit"}),
    ("topological_order", lambda root: set(practice._LIBRARY_ORDER(root)), {"call": "returned set; expected a list"}),
    ("topological_order", lambda root: practice._LIBRARY_ORDER(root)[1:], {"call": "nodes are missing"}),
    ("topological_order", lambda root: root.topological_order(), {"call": "the very function it replaces"}),
]


def _deltas(W, z, a, t, *, bp1_prime=True, transpose=True, prime=activations.sigmoid_prime, at=None):
    at = z if at is None else at
    L = len(W) - 1
    delta = [None] * (L + 1)
    delta[L] = (a[L] - t) * (prime(at[L]) if bp1_prime else 1.0)
    for k in range(L - 1, 0, -1):
        delta[k] = ((W[k + 1].T if transpose else W[k + 1]) @ delta[k + 1]) * prime(at[k])
    return delta


def _backprop(W, b, x, t, *, outer=lambda d, a: np.outer(d, a), shift=1, sign=1.0):
    z, a = SOLUTIONS["backprop"].__globals__["forward"](W, b, x)
    delta = _deltas(W, z, a, t)
    L = len(W) - 1
    return ([None] + [sign * outer(delta[k], a[k - shift]) for k in range(1, L + 1)],
            [None] + [sign * delta[k] for k in range(1, L + 1)])


WRONG += [
    ("deltas", lambda W, z, a, t: _deltas(W, z, a, t, bp1_prime=False), {"delta2": "BP1 without sigma'"}),
    ("deltas", lambda W, z, a, t: _deltas(W, z, a, t, transpose=False), {"call": "BP2 without the transpose"}),
    ("deltas", lambda W, z, a, t: _deltas(W, z, a, t, prime=activations.sigmoid), {"delta1": "sigma instead of sigma'"}),
    ("deltas", lambda W, z, a, t: _deltas(W, z, a, t, at=a), {"delta1": "sigma'(a) instead of sigma'(z)"}),
    ("deltas", lambda W, z, a, t: _deltas(W, z, a, t)[1:], {"call": "keep index 0 unused"}),
    ("backprop", lambda W, b, x, t: _backprop(W, b, x, t, outer=lambda d, a: np.outer(a, d)), {"dW1": "BP4 transposed"}),
    ("backprop", lambda W, b, x, t: _backprop(W, b, x, t, shift=0), {"dW1": "a^l in BP4 where a^(l-1) belongs"}),
    ("backprop", lambda W, b, x, t: _backprop(W, b, x, t, sign=-1.0), {"dW1": "a wrong sign", "db2": "a wrong sign"}),
    ("backprop", lambda W, b, x, t: _backprop(W, b, x, t)[0], {"call": "expected a pair of lists"}),
    ("linear_backward", lambda dy, c: (dy @ c.W.T, dy.T @ c.x, dy.sum(axis=0)), {"dW": "missing transpose"}),
    ("linear_backward", lambda dy, c: (dy @ c.W.T, c.x.T @ dy, dy), {"db": "a forgotten sum over the batch"}),
    ("linear_backward", lambda dy, c: (dy @ c.W.T, c.x.T @ dy, dy.mean(axis=0)), {"db": "an extra 1/N (N = 3)"}),
    ("linear_backward", lambda dy, c: (dy @ c.W.T, c.x.T @ dy / len(dy), dy.sum(axis=0)), {"dW": "the 1/N of the mean loss"}),
    ("linear_backward", lambda dy, c: (dy @ c.W, c.x.T @ dy, dy.sum(axis=0)), {"call": "dx = dy W without the transpose"}),
    ("two_layer_backward", lambda *a: practice._two_layer_variant(*a, dtanh=lambda h, z: 1 - np.tanh(h) ** 2),
     {"dW1": "wrong cached value"}),
    ("two_layer_backward", lambda *a: practice._two_layer_variant(*a, mean=False), {"dW2": "a missing 1/N"}),
    ("two_layer_backward", lambda *a: practice._two_layer_variant(*a, dtanh=lambda h, z: 1.0),
     {"db1": "the derivative of tanh is missing"}),
    ("two_layer_backward", lambda x, t, W1, b1, W2, b2: (*practice._two_layer_variant(x, t, W1, b1, W2, b2)[:3], (
        np.tanh(x @ W1 + b1) @ W2 + b2 - t) / len(x)), {"db2": "a forgotten sum over the batch"}),
]


def _sgd_in_place(w, dw, v, lr, momentum):
    v *= momentum
    v += dw
    w -= lr * v
    return w, v


def _adam(w, dw, m, r, t, lr, beta1, beta2, eps, **kw):
    return practice._adam_variant(w, dw, m, r, t, lr, beta1, beta2, eps, **kw)


WRONG += [
    ("sgd_momentum_step", lambda w, dw, v, lr, mu: (w - lr * dw, mu * v + dw), {"w": "momentum ignored"}),
    ("sgd_momentum_step", lambda w, dw, v, lr, mu: (w - lr * (mu * v + (1 - mu) * dw), mu * v + (1 - mu) * dw),
     {"v": "dampening"}),
    ("sgd_momentum_step", lambda w, dw, v, lr, mu: (w - lr * v, mu * v + dw), {"w": "the old velocity"}),
    ("sgd_momentum_step", lambda w, dw, v, lr, mu: (w + (mu * v - lr * dw), mu * v - lr * dw), {"v": "-lr times bplib's velocity"}),
    ("sgd_momentum_step", _sgd_in_place, {"arguments": "changed w, v (at step 1) in place"}),
    ("sgd_momentum_step", lambda w, dw, v, lr, mu: ((w - lr * (mu * v + dw))[None], mu * v + dw), {"call": "w_new has shape"}),
    ("adam_step", lambda *a: _adam(*a, correct=False), {"w": "no bias correction"}),
    ("adam_step", lambda *a: _adam(*a, t_shift=-1), {"w": "counts from t = 0"}),
    ("adam_step", lambda *a: _adam(*a, eps_inside=True), {"w": "eps inside the square root"}),
    ("adam_step", lambda *a: _adam(*a, root=False), {"w": "no square root"}),
    ("adam_step", lambda *a: _adam(*a, swap=True), {"m": "swapped"}),
    ("adam_step", lambda *a: _adam(*a, square=False), {"r": "r averages dw, not dw^2"}),
    ("adam_step", lambda *a: _adam(*a)[:2], {"call": "returned 2 values; expected 3"}),
]

WRONG += [
    ("softmax_backward", lambda ds, c: ds * c.s * (1 - c.s), {"dz": "only the diagonal of the Jacobian"}),
    ("softmax_backward", lambda ds, c: c.s * (ds - np.sum(ds * c.s, axis=0, keepdims=True)), {"dz": "over the batch (axis 0)"}),
    ("softmax_backward", lambda ds, c: c.s * (ds - np.sum(ds * c.s, axis=-1)), {"call": "lost their axis"}),
    ("softmax_backward", lambda ds, c: c.s * (ds - np.sum(ds, axis=-1, keepdims=True)), {"dz": "without the weights s_k"}),
    ("softmax_backward", lambda ds, c: np.sum(c.s * ds, axis=0), {"dz": "shape (5,), expected (3, 5)"}),
    ("log_softmax_backward", lambda d, c: d - np.sum(c.s * d, axis=-1, keepdims=True), {"dz": "without its transpose"}),
    ("log_softmax_backward", lambda d, c: d * (1 - c.s), {"dz": "only the diagonal"}),
    ("log_softmax_backward", lambda d, c: d - c.s * np.sum(d, axis=0, keepdims=True), {"dz": "over the batch (axis 0)"}),
    ("log_softmax_backward", lambda d, c: d - c.s * np.sum(d, axis=-1), {"call": "lost their axis"}),
    ("softmax_cross_entropy_backward", lambda dl, c: _sce(c), {"dz": "dloss is not multiplied in"}),
    ("softmax_cross_entropy_backward", lambda dl, c: _sce(c, dl, per_n=False), {"dz": "a missing 1/N (N = 3)"}),
    ("softmax_cross_entropy_backward", lambda dl, c: -_sce(c, dl), {"dz": "a wrong sign"}),
    ("softmax_cross_entropy_backward", practice._sce_column_bug, {"dz": "dz[:, y] -= 1"}),
    ("softmax_cross_entropy_backward", lambda dl, c: _sce(c, dl).sum(axis=0), {"dz": "shape (5,), expected (3, 5)"}),
]


def _conv(dy, c, **kw):
    return practice._conv_variant(dy, c, **kw)


def _dW_per_example(dy, c):
    dx, _, db = _conv(dy, c)
    xp = np.pad(c.x, ((0, 0), (0, 0), (c.pad, c.pad), (c.pad, c.pad)))
    kh, kw, S = c.W.shape[2], c.W.shape[3], c.stride
    dW = np.zeros((len(dy),) + c.W.shape)
    for n, f, i, j in np.ndindex(dy.shape):
        dW[n, f] += dy[n, f, i, j] * xp[n, :, i * S:i * S + kh, j * S:j * S + kw]
    return dx, dW, db


WRONG += [
    ("conv2d_naive_backward", lambda dy, c: _conv(dy, c, stride_used=False), {"dx": "stride ignored", "dW": "stride ignored"}),
    ("conv2d_naive_backward", lambda dy, c: _conv(dy, c, rotate_missing=True), {"dx": "the kernel is not rotated"}),
    ("conv2d_naive_backward", lambda dy, c: _conv(dy, c, crop=False), {"dx": "the padding is still there"}),
    ("conv2d_naive_backward", lambda dy, c: _conv(dy, c, accumulate=False), {"dx": "overwrite each other"}),
    ("conv2d_naive_backward", _dW_per_example, {"dW": "a forgotten sum over the batch"}),
    ("conv2d_naive_backward", lambda dy, c: (*_conv(dy, c)[:2], dy.sum(axis=0)), {"db": "a forgotten sum over axes (1, 2)"}),
    ("maxpool_backward", lambda d, c: practice._pool_variant(d, c, spread=True), {"dx": "spread over the whole window"}),
    ("maxpool_backward", lambda d, c: practice._pool_variant(d, c, accumulate=False), {"dx": "overwrite each other"}),
    ("maxpool_backward", lambda d, c: practice._pool_variant(d, c, stride_used=False), {"dx": "stride ignored"}),
    ("maxpool_backward", lambda d, c: d, {"dx": "shape (2, 3, 3, 3), expected (2, 3, 6, 6)"}),
]

WRONG += [
    ("rnn_step_backward", lambda dh, c: practice._rnn_step_variant(dh, c, prime=lambda c: 1 - c.h_prev**2),
     {"dx": "wrong cached value"}),
    ("rnn_step_backward", lambda dh, c: practice._rnn_step_variant(dh, c, prime=lambda c: 1.0),
     {"dWh": "the derivative of tanh is missing"}),
    ("rnn_step_backward", lambda dh, c: practice._rnn_step_variant(dh, c, transpose_h=False), {"dh_prev": "without the transpose"}),
    ("rnn_step_backward", lambda dh, c: (*practice._rnn_step_variant(dh, c)[:4], dh * (1 - c.h_next**2)),
     {"db": "a forgotten sum over the batch"}),
    ("rnn_backward", lambda dh, c: _rnn_loop(dh, c, carry=False), {"dWh": "nothing is carried back in time"}),
    ("rnn_backward", lambda dh, c: _rnn_loop(dh, c, accumulate=False), {"dWx": "one step's share only"}),
    ("rnn_backward", lambda dh, c: practice._bptt_variant(dh, c, forward_in_time=True), {"dx": "runs forward in time"}),
    ("rnn_backward", lambda dh, c: _rnn_loop(dh, c)[:4], {"call": "returned 4 values; expected 5"}),
    ("lstm_step_backward", lambda dh, dc, c: practice._lstm_variant(dh, dc, c, through_h=False), {"dc_prev": "misses the path"}),
    ("lstm_step_backward", lambda dh, dc, c: practice._lstm_variant(dh, dc, c, order=(0, 1, 3, 2)), {"dWx": "wrong order"}),
    ("lstm_step_backward", lambda dh, dc, c: practice._lstm_variant(dh, dc, c, forget=False), {"dc_prev": "dc_prev = dc"}),
    ("lstm_step_backward", lambda dh, dc, c: practice._lstm_variant(dh, dc, c, tc_as_c=True), {"dx": "wrong cached value"}),
    ("lstm_step_backward", lambda dh, dc, c: practice._lstm_variant(dh, dc, c)[:5], {"call": "returned 5 values; expected 6"}),
]

for _name in ("batchnorm_backward_steps", "batchnorm_backward"):
    WRONG += [
        (_name, lambda d, c: practice._bn_variant(d, c, mean_path=False), {"dx": "the path through the mean is missing"}),
        (_name, lambda d, c: practice._bn_variant(d, c, var_path=False), {"dx": "the path through the variance is missing"}),
        (_name, lambda d, c: practice._bn_variant(d, c, mean_path=False, var_path=False), {"dx": "treated as constants"}),
        (_name, lambda d, c: practice._bn_variant(d, c, unbiased=True), {"dx": "the unbiased variance"}),
        (_name, lambda d, c: practice._bn_variant(d, c, dgamma_xhat=False), {"dgamma": "dgamma = sum_n dout"}),
        (_name, lambda d, c: (practice._bn_variant(d, c)[0] * len(d), *practice._bn_variant(d, c)[1:]),
         {"dx": "a missing 1/N (N = 5)"}),
        (_name, lambda d, c: (practice._bn_variant(d, c)[0], d * c.xhat, d.sum(axis=0)), {"dgamma": "a forgotten sum over the batch"}),
    ]

WRONG += [
    ("scale_backward", lambda d, c: (d * c.g, d * c.x), {"dg": "dg not summed over the batch"}),
    ("scale_backward", lambda d, c: (d * c.x, np.sum(d * c.g, axis=0)), {"dx": "each input's own value"}),
    ("scale_backward", lambda d, c: (d * c.g, d.sum(axis=0)), {"dg": "the factor x is missing"}),
    ("scale_backward", lambda d, c: (-d * c.g, -np.sum(d * c.x, axis=0)), {"dx": "a wrong sign", "dg": "a wrong sign"}),
    ("scale_backward", lambda d, c: d * c.g, {"call": "returned ndarray; the tape expects a tuple of 2"}),
    ("sigmoid_curvature", lambda d, c, ts, to: (None,), {"Hv[W1]": "no curvature term"}),
    ("sigmoid_curvature", lambda d, c, ts, to: (d * c.out * (1 - c.out) * to,), {"Hv[b1]": "its derivative 1 - 2y belongs"}),
    ("sigmoid_curvature", lambda d, c, ts, to: (d * (1 - 2 * c.out) * ts[0],), {"Hv[x]": "the input's tangent"}),
    ("sigmoid_curvature", lambda d, c, ts, to: (-d * (1 - 2 * c.out) * to,), {"Hv[W1]": "a wrong sign in the curvature term"}),
    ("sigmoid_curvature", lambda d, c, ts, to: d * (1 - 2 * c.out) * to, {"call": "returned ndarray"}),
]


@pytest.mark.parametrize(("name", "wrong", "says"), WRONG, ids=[f"{w[0]}-{i}" for i, w in enumerate(WRONG)])
def test_wrong_implementation_is_refused_with_its_diagnosis(name, wrong, says, capsys):
    result = run_check(name, wrong, capsys)
    assert not result and result.status == "failed"
    for key, words in says.items():
        assert key in result.failures, (key, result.report)
        failure = result.failures[key]
        assert words in f"{failure.message} {failure.mistake}", result.report
        assert words in " ".join(result.report.split()) or key == "arguments"


def test_every_checker_has_three_wrong_implementations_and_a_wrong_shape():
    counts = {name: sum(w[0] == name for w in WRONG) for name in NAMES}
    assert min(counts.values()) >= 3, counts
    shaped = {w[0] for w in WRONG if any(k in ("call",) or "shape" in v or "sum" in v or "transpose" in v
                                         for k, v in w[2].items())}
    assert shaped == set(NAMES), set(NAMES) - shaped


# ----------------------------------------------------------------------------------------
# The starter copies


def test_starter_removes_solutions_and_outputs(tmp_path):
    written, kept = TOOL.write_starters(ROOT / "chapters" / "practice", tmp_path)
    assert len(written) == len(NOTEBOOKS) and not kept
    for path in written:
        nb = json.loads(path.read_text())
        assert not any("solution" in TOOL.tags(c) for c in nb["cells"])
        assert all(c["outputs"] == [] and c["execution_count"] is None for c in nb["cells"] if c["cell_type"] == "code")
        stored = json.loads((ROOT / "chapters" / "practice" / path.name).read_text())
        kept_cells = [c for c in stored["cells"] if "solution" not in TOOL.tags(c)]
        assert [_source(c) for c in nb["cells"]] == [_source(c) for c in kept_cells]


def test_starter_keeps_the_readers_work_unless_forced(tmp_path, capsys):
    TOOL.write_starters(ROOT / "chapters" / "practice", tmp_path)
    mine = tmp_path / "01_derivatives.ipynb"
    mine.write_text("my work")
    assert TOOL.main([str(ROOT / "chapters" / "practice"), str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert mine.read_text() == "my work" and "Kept 1" in out and f"jupyter lab {tmp_path}" in out
    TOOL.main(["--force", str(ROOT / "chapters" / "practice"), str(tmp_path)])
    assert mine.read_text() != "my work"


def test_stub_problems_are_found():
    def nb(*cells):
        return {"cells": [{"cell_type": "code", "metadata": {"tags": list(t)}, "source": s, "outputs": []} for s, t in cells]}

    stub = ('def f(a, b):\n    """Doc."""\n    raise NotImplementedError\n', ())
    good = ("def f(a, b):\n    return a\n", ("solution",))
    assert TOOL.stub_problems(nb(stub, good)) == []
    assert "does not match its stub" in TOOL.stub_problems(nb(stub, ("def f(a):\n    return a\n", ("solution",))))[0]
    assert TOOL.stub_problems(nb(stub)) == ["the stub f has no solution"]
    assert "has no stub before it" in TOOL.stub_problems(nb(good))[0]
    assert not TOOL.is_stub(TOOL.functions('def f():\n    """Doc."""\n    return 1\n')["f"][1])


def test_starter_copies_run_headless_and_say_not_done_yet(tmp_path):
    """Every starter notebook runs in a fresh kernel without an error, and each of its checks says 'not done yet'."""
    from nbclient import NotebookClient

    written, _ = TOOL.write_starters(ROOT / "chapters" / "practice", tmp_path)
    notebooks = [nbformat.read(p, as_version=4) for p in written]

    async def run_all():  # the kernels start concurrently: seconds, not a minute
        clients = [NotebookClient(nb, kernel_name="python3", timeout=120, resources={"metadata": {"path": str(tmp_path)}})
                   for nb in notebooks]
        await asyncio.gather(*(c.async_execute() for c in clients))

    asyncio.run(run_all())
    for path, nb in zip(written, notebooks):
        stubs = [n for c in nb.cells if c.cell_type == "code" for n, (_, body) in TOOL.functions(c.source).items()
                 if TOOL.is_stub(body)]
        texts = ["".join(o.get("text", "") for o in c.outputs) for c in nb.cells if c.cell_type == "code"]
        assert not any(o.output_type == "error" for c in nb.cells if c.cell_type == "code" for o in c.outputs), path.name
        not_done = [t for t in texts if "not done yet" in t]
        assert len(not_done) == len(stubs) >= 2, (path.name, texts)
        assert not any("passed" in t for t in texts), path.name
