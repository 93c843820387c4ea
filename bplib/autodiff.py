"""Backpropagation as reverse-mode differentiation over the pairs of chapters 1 to 6 (chapter 10).

A ``Tape`` records a program as it runs: each ``apply`` calls an op's forward
function and keeps the op's name, its input nodes and its cache. ``backward``
replays the record in reverse, calling each op's backward function and summing
the gradients of a node used more than once. Every op is registered in one
table, ``OPS``, with its forward/backward pair, the names of its differentiable
(positional) arguments, a ``jvp`` rule for forward mode and a ``curvature``
rule for second derivatives. Keyword arguments of an op (labels, targets, p,
rng, lam) are constants. ``Dual`` numbers do forward mode on scalars.

Second order, all from the same rules: ``Tape.hvp`` (Hessian-vector products,
forward over reverse, or reverse over reverse through ``Tape.backward_graph``),
``Tape.gvp`` (Gauss-Newton-vector products) and ``conjugate_gradient`` to solve
with them. ``checkpointed_gradient`` stores every k-th layer and recomputes the
rest, trading time for memory.

Shapes use the glossary of bplib: x (N, D), W (D, M), b (M,), logits z (N, K).
"""

import itertools
import math
import numbers
from collections import namedtuple
from typing import NamedTuple

import numpy as np

from bplib import activations, linear, losses
from bplib._validate import as_float_array, check_cache, check_int, check_real, check_rng, check_same_shape, check_shape


def _array(fn, name, x):
    """as_float_array, reading an np.matrix (whose * is a matrix product) as a plain array."""
    return as_float_array(fn, name, np.asarray(x) if isinstance(x, np.matrix) else x)


def _real(fn, name, v):
    """A finite real number; a numpy array of shape () counts as one."""
    if isinstance(v, np.ndarray) and v.shape == () and v.dtype.kind in "iuf":
        v = v.item()
    return check_real(fn, name, v)


def _check_finite(fn, what, v):
    """Raise when v overflowed: a cheap sum first, the full scan only when the sum is not finite."""
    with np.errstate(over="ignore", invalid="ignore"):
        cheap = np.isfinite(np.sum(v))
    if not cheap and not np.all(np.isfinite(v)):
        raise ValueError(f"{fn}: {what} overflows {np.asarray(v).dtype}; the inputs, tangents or dout are too large")
    return v


def _quiet():  # for the sweeps: an overflow is checked once, at the end, and reported as an error
    return np.errstate(over="ignore", invalid="ignore")


def _scalar_or_array(v):
    return float(v) if np.ndim(v) == 0 else v


def _as_tuple(grads):
    return grads if isinstance(grads, tuple) else (grads,)


def _add(acc, i, g):
    if g is not None:
        acc[i] = g if acc[i] is None else acc[i] + g  # never in place: g may be another node's array


def _sum(*terms):
    """The sum of the tangents present (None is zero); always a new value, never one of the terms."""
    present = [t for t in terms if t is not None]
    if len(present) == 1:
        return present[0].copy() if isinstance(present[0], np.ndarray) else present[0]
    return sum(present[1:], present[0]) if present else None


class DropoutCache(NamedTuple):
    """What dropout_backward needs: the scaled mask m / (1 - p), the shape of x (all ones when not training)."""

    scale: np.ndarray
    made_by = "dropout_forward"


class L2PenaltyCache(NamedTuple):
    """What l2_penalty_backward needs: W and the coefficient lam."""

    W: np.ndarray
    lam: float
    made_by = "l2_penalty_forward"


class AddCache(NamedTuple):
    """What add_backward needs: the common shape of a and b."""

    shape: tuple
    made_by = "add_forward"


def dropout_forward(x, p, rng, training=True):
    """out = x * m / (1 - p), m_i ~ Bernoulli(1 - p) drawn from rng; out = a copy of x
    when not training.

    Parameters: x, array of any shape; p, the probability of dropping an entry,
    in [0, 1); rng, a numpy Generator; training, a bool (numpy's bool too).
    Returns: (out, cache), out the shape of x; the cache keeps the scaled mask
    m / (1 - p). Raises ValueError when an entry of x / (1 - p) exceeds the largest
    float of x's dtype. Derived in chapter 10.
    """
    fn = "dropout_forward"
    x = _array(fn, "x", x)
    p = check_real(fn, "p", p, low=0.0, high=1.0, high_open=True)
    rng = check_rng(fn, "rng", rng)
    if not isinstance(training, (bool, np.bool_)):
        raise TypeError(f"{fn}: argument 'training' must be True or False, "
                        f"got {training!r} of type {type(training).__name__}")
    if not training:
        # a new array, as in training: out never aliases x
        return x.copy(), DropoutCache(np.ones_like(x))
    # keep with prob. 1 - p
    scale = ((rng.random(x.shape) >= p) / (1.0 - p)).astype(x.dtype)
    with np.errstate(over="ignore"):
        out = x * scale
    return _check_finite(fn, "x / (1 - p)", out), DropoutCache(scale)


def dropout_backward(dout, cache):
    """dx = dout * m / (1 - p): the same mask, so a dropped entry gets no gradient.

    Parameters: dout, the shape of x; cache from dropout_forward. Returns: dx, the shape of x.
    Derived in chapter 10.
    """
    scale = check_cache("dropout_backward", cache, DropoutCache).scale
    dout = _array("dropout_backward", "dout", dout)
    check_same_shape("dropout_backward", "dout", dout, "x", scale)
    return dout * scale


def l2_penalty_forward(W, lam):
    """R = (lam / 2) ||W||^2 = (lam / 2) sum_ij W_ij^2, in float64, finite whenever R itself is.

    Parameters: W, array of any shape; lam, a coefficient >= 0. Returns: (R, cache), R a float.
    Raises ValueError when R exceeds the largest float64 (about 1.8e308). Derived in chapter 5;
    a pair in chapter 10.
    """
    W = _array("l2_penalty_forward", "W", W)
    lam = check_real("l2_penalty_forward", "lam", lam, low=0.0)
    with np.errstate(over="ignore"):
        R = 0.5 * lam * float(np.sum(np.square(W, dtype=np.float64)))
        if not math.isfinite(R):  # a square overflowed: with s = max |W|, R = lam/2 s^2 sum (W/s)^2
            s = float(np.max(np.abs(W)))
            r = s * math.sqrt(0.5 * lam * float(np.sum(np.square(W / s, dtype=np.float64))))
            R = r * r  # inf, not an OverflowError, when R itself is beyond float64
    if not math.isfinite(R):
        raise ValueError(f"l2_penalty_forward: the penalty (lam / 2) ||W||^2 overflows float64 (largest |W| {np.max(np.abs(W)):.3g})")
    return R, L2PenaltyCache(W, lam)


def l2_penalty_backward(dR, cache):
    """dW = dR lam W.

    Parameters: dR, a float; cache from l2_penalty_forward. Returns: dW, the shape and dtype of W.
    Raises ValueError when an entry of dW exceeds the largest float of W's dtype. Derived in chapter 10.
    """
    cache = check_cache("l2_penalty_backward", cache, L2PenaltyCache)
    with np.errstate(over="ignore"):
        dW = (_real("l2_penalty_backward", "dR", dR) * cache.lam) * cache.W
    return _check_finite("l2_penalty_backward", "dR * lam * W", dW)


def add_forward(a, b):
    """out = a + b, for a and b of the same shape (for example a loss and a penalty).

    Parameters: a, b, numbers or arrays of one shape. Returns: (out, cache). Derived in chapter 10.
    """
    a, b = _array("add_forward", "a", a), _array("add_forward", "b", b)
    check_same_shape("add_forward", "a", a, "b", b)
    with np.errstate(over="ignore"):
        out = _check_finite("add_forward", "a + b", a + b)
    return _scalar_or_array(out), AddCache(a.shape)


def add_backward(dout, cache):
    """da = dout, db = dout: addition copies the upstream gradient to both terms.

    Parameters: dout, the shape of out; cache from add_forward. Returns: (da, db), two new
    arrays (floats for a scalar), never dout itself. Derived in chapter 10.
    """
    shape = check_cache("add_backward", cache, AddCache).shape
    dout = _array("add_backward", "dout", dout)
    check_shape("add_backward", "dout", dout, shape)
    return _scalar_or_array(dout.copy()), _scalar_or_array(dout.copy())


# One row of OPS: the pair; the names of the differentiable (positional) arguments; jvp(cache,
# *tangents), the tangent of the output; curvature(dout, cache, tangents, out_tangent), per
# argument the part of the tangent of backward(dout, cache) that comes from the cache moving
# (None for zero); and convex, true for a loss whose curvature is positive semi-definite.
# A missing tangent is None (zero): the tape calls a rule only when some tangent is present,
# and the rules of several arguments skip the missing ones. Backward is linear in dout, so the
# rest of the tangent of backward(dout, cache) is backward(tangent of dout, cache).
Op = namedtuple("Op", "forward backward args jvp curvature convex", defaults=(None, False))


def _linear_jvp(c, tx, tW, tb):  # d(xW + b) = dx W + x dW + db
    return _sum(None if tx is None else tx @ c.W, None if tW is None else c.x @ tW, tb)


def _linear_curvature(dy, c, ts, to):  # dx = dy W^T moves with W, dW = x^T dy with x
    tx, tW, _ = ts
    return (None if tW is None else dy @ tW.T, None if tx is None else tx.T @ dy, None)


def _loss_jvp(backward):
    # A scalar output f(u): its tangent is <grad f, u_dot>, and backward(1.0) is grad f.
    return lambda c, *ts: float(sum(np.sum(g * t) for g, t in zip(_as_tuple(backward(1.0, c)), ts) if t is not None))


def _softmax_jvp(s, t):
    return s * (t - np.sum(s * t, axis=-1, keepdims=True))  # (N, K): (diag(s) - s s^T) t, row by row


OPS = {
    "linear": Op(linear.linear_forward, linear.linear_backward, ("x", "W", "b"), _linear_jvp, _linear_curvature),
    "sigmoid": Op(activations.sigmoid_forward, activations.sigmoid_backward, ("x",),
                  lambda c, t: t * c.out * (1.0 - c.out),
                  lambda d, c, ts, to: (d * (1.0 - 2.0 * c.out) * to,)),
    "tanh": Op(activations.tanh_forward, activations.tanh_backward, ("x",),
               lambda c, t: t * (1.0 - c.out * c.out),
               lambda d, c, ts, to: (-2.0 * d * c.out * to,)),
    "relu": Op(activations.relu_forward, activations.relu_backward, ("x",),
               lambda c, t: np.where(c.x > 0, t, 0.0)),
    "dropout": Op(dropout_forward, dropout_backward, ("x",), lambda c, t: t * c.scale),
    "add": Op(add_forward, add_backward, ("a", "b"), lambda c, ta, tb: _sum(ta, tb)),
    "l2_penalty": Op(l2_penalty_forward, l2_penalty_backward, ("W",), _loss_jvp(l2_penalty_backward),
                     lambda d, c, ts, to: (d * c.lam * ts[0],), convex=True),
    "half_squared_error": Op(losses.half_squared_error_forward, losses.half_squared_error_backward, ("y",),
                             _loss_jvp(losses.half_squared_error_backward),
                             lambda d, c, ts, to: (d * ts[0] / c.n,), convex=True),
    "bce_with_logits": Op(losses.binary_cross_entropy_with_logits_forward, losses.binary_cross_entropy_with_logits_backward,
                          ("z",), _loss_jvp(losses.binary_cross_entropy_with_logits_backward),
                          lambda d, c, ts, to: (d * activations.sigmoid_prime(c.z) * ts[0] / c.z.shape[0],), convex=True),
    "softmax_cross_entropy": Op(losses.softmax_cross_entropy_forward, losses.softmax_cross_entropy_backward, ("z",),
                                _loss_jvp(losses.softmax_cross_entropy_backward),
                                lambda d, c, ts, to: (d * _softmax_jvp(c.s, ts[0]) / c.s.shape[0],), convex=True),
}


class _VjpCache(NamedTuple):
    """What the backward of a recorded backward call needs: its upstream gradient and the op's cache."""

    dout: object
    cache: tuple


_SECOND = {}  # "op'i" -> the i-th output of op's backward as an op of its own (reverse over reverse)


def _vjp_op(op, i):
    """The Op computing dx_i = backward(dout, cache)[i]; its backward is op's second-order rule.

    For a cotangent w of dx_i, it returns J_i w for dout (the jvp rule with tangent w on
    argument i) and, per argument j, d^2<dout, f>/dx_j dx_i w (the curvature rule, symmetric).
    """
    name = f"{op}'{i}"
    if name not in _SECOND:
        spec = OPS[op]

        def backward(w, c):
            ts = [None] * len(spec.args)
            ts[i] = w
            to = spec.jvp(c.cache, *ts)
            curv = spec.curvature(c.dout, c.cache, ts, to) if spec.curvature else (None,) * len(ts)
            return (to, *curv)

        _SECOND[name] = Op(None, backward, ("dout",) + spec.args, None)
    return name


def _spec(op):
    return OPS[op] if op in OPS else _SECOND[op]


_TAPE_IDS = itertools.count()  # every Tape gets a number of its own


class Node:
    """A value on a tape: ``value`` (a float or an array), its ``index`` on the tape, ``op`` (None for an
    input) and ``name`` (for an input). It knows its tape by ``tape_id``, a number, not by a reference: a
    tape holds its nodes, and a reference back would make a cycle that only the garbage collector frees,
    so a dropped tape would linger with all its caches."""

    __slots__ = ("tape_id", "index", "value", "op", "name")

    def __init__(self, tape_id, index, value, op=None, name=None):
        self.tape_id, self.index, self.value, self.op, self.name = tape_id, index, value, op, name

    @property
    def shape(self):
        return np.shape(self.value)

    def __repr__(self):
        return f"Node({self.name or self.op}, shape={self.shape})"


class Tape:
    """The record of a forward pass: (op, input nodes, cache) per node; backward replays it in reverse.

    ``passes`` counts the sweeps made so far: {"backward": ..., "jvp": ...}. Derived in chapter 10.
    """

    def __init__(self):
        self.nodes, self._records, self._inputs = [], [], {}
        self.passes = {"backward": 0, "jvp": 0}
        self._id = next(_TAPE_IDS)

    def _record(self, op, parents, cache, value, name=None):
        node = Node(self._id, len(self.nodes), value, op, name)
        self.nodes.append(node)
        self._records.append((op, tuple(parents), cache))
        return node

    def input(self, value, name=None):
        """A leaf node holding ``value`` (an array or a number, not copied); ``name`` keys the gradient dict."""
        value = _array("Tape.input", "value", value)
        name = f"input{len(self._inputs)}" if name is None else name
        if not isinstance(name, str):
            raise TypeError(f"Tape.input: argument 'name' must be a string, got {type(name).__name__}")
        if name in self._inputs:
            raise ValueError(f"Tape.input: argument 'name' is already used by another input: {name!r}")
        self._inputs[name] = node = self._record(None, (), None, value, name)
        return node

    def records(self):
        """The tape as a list, in recording order: (op name, input node indices) per node; (None, ()) for an input."""
        return [(op, parents) for op, parents, _ in self._records]

    def _check_node(self, fn, name, node):
        if not isinstance(node, Node):
            raise TypeError(f"{fn}: argument '{name}' must be a Node of this tape, got {type(node).__name__}")
        if node.tape_id != self._id:
            raise ValueError(f"{fn}: argument '{name}' is a Node of another tape")
        return node

    def apply(self, op, *args, **constants):
        """out = OPS[op].forward(*values of args, **constants), recorded; returns the
        output Node.

        Positional arguments are the op's differentiable inputs, as Nodes of this tape;
        keyword arguments are constants passed to the forward function as they are.
        """
        if not isinstance(op, str):
            raise TypeError("Tape.apply: argument 'op' must be the name of a "
                            f"registered op, got {type(op).__name__}")
        if op not in OPS:
            raise ValueError(f"Tape.apply: unknown op {op!r}; "
                             f"registered ops: {', '.join(sorted(OPS))}")
        spec = OPS[op]
        if len(args) != len(spec.args):
            raise TypeError(f"Tape.apply: op '{op}' takes {len(spec.args)} Nodes "
                            f"({', '.join(spec.args)}), got {len(args)}")
        for name, node in zip(spec.args, args):
            self._check_node(f"Tape.apply('{op}')", name, node)
        for name, value in constants.items():
            if isinstance(value, Node):
                raise TypeError(f"Tape.apply('{op}'): keyword argument '{name}' is a "
                                "constant and must not be a Node")
        try:
            with _quiet():
                value, cache = spec.forward(*(n.value for n in args), **constants)
        except (TypeError, ValueError) as exc:
            # the op's own message, under the name the user called
            raise type(exc)(f"Tape.apply('{op}'): {exc}") from exc
        _check_finite(f"Tape.apply('{op}')", "the output", value)
        return self._record(op, (n.index for n in args), cache, value)

    def _seed(self, fn, out, dout):
        if dout is None:
            if np.ndim(out.value) != 0:
                raise ValueError(f"{fn}: argument 'dout' is needed when 'out' is not a scalar (shape {out.shape})")
            return 1.0
        if np.ndim(out.value) == 0:
            return _real(fn, "dout", dout)
        dout = _array(fn, "dout", dout)
        check_shape(fn, "dout", dout, out.shape)
        return dout.copy()  # the adjoint of out: never the caller's own array

    def _input_tangents(self, fn, tangents):
        """{input index: tangent} from {input name: array}, checked; inputs not named have none (zero)."""
        if not isinstance(tangents, dict):
            raise TypeError(f"{fn}: argument 'tangents' must be a dict from input name to array, got {type(tangents).__name__}")
        unknown = sorted(map(str, set(tangents) - set(self._inputs)))
        if unknown:
            raise ValueError(f"{fn}: argument 'tangents' names no input: {unknown}; inputs: {sorted(self._inputs)}")
        out = {}
        for name, v in tangents.items():
            node = self._inputs[name]
            out[node.index] = _array(fn, f"tangents['{name}']", v)
            check_shape(fn, f"tangents['{name}']", out[node.index], node.shape)
        return out

    def _tangents(self, fn, tangents):
        """The tangent of every node (None where it is zero), given tangents of some inputs: one jvp sweep."""
        t = [None] * len(self.nodes)
        for i, v in self._input_tangents(fn, tangents).items():
            t[i] = v
        for i, (op, parents, cache) in enumerate(self._records):
            ts = [t[p] for p in parents]
            if op is not None and any(v is not None for v in ts):
                if _spec(op).jvp is None:
                    raise ValueError(f"{fn}: op {op!r} has no forward-mode rule; a backward graph is differentiated in reverse only")
                t[i] = _spec(op).jvp(cache, *ts)
        self.passes["jvp"] += 1
        return t

    def _reverse(self, seeds, keep=()):
        """Adjoints from {node index: seed} by one reverse sweep: the loop of the chapter.

        Once a node has passed its adjoint on, the adjoint is dropped (memory), except
        at the inputs and at the indices in keep."""
        adj = [None] * len(self.nodes)
        for i, seed in seeds.items():
            _add(adj, i, seed)
        for i in range(max(seeds, default=-1), -1, -1):
            op, parents, cache = self._records[i]
            if op is None or adj[i] is None:
                continue  # an input, or a node that the seeds do not depend on
            for p, g in zip(parents, _as_tuple(_spec(op).backward(adj[i], cache))):
                _add(adj, p, g)  # the sum over the uses of node p
            if i not in keep:
                adj[i] = None
        self.passes["backward"] += 1
        return adj

    def _second_order(self, fn, out, seed, t, gauss_newton):
        """The tangents of the adjoints along the node tangents t: H v at the inputs,
        one reverse sweep.

        Each op adds backward(tangent of its adjoint) and its curvature term. With
        gauss_newton only the convex losses keep their curvature, and adjoints flow only
        through 'add': G v.
        """
        adj, tadj = [None] * len(self.nodes), [None] * len(self.nodes)
        adj[out.index] = seed
        for i in range(out.index, -1, -1):
            op, parents, cache = self._records[i]
            if op is None or (adj[i] is None and tadj[i] is None):
                continue
            spec = OPS[op]
            if gauss_newton and adj[i] is not None and not (spec.convex or op == "add"):
                raise ValueError(f"{fn}: 'out' must be a loss or a sum of losses "
                                 f"made with 'add'; op '{op}' (node {i}) is neither")
            if adj[i] is not None and (op == "add" or not gauss_newton):
                for p, g in zip(parents, _as_tuple(spec.backward(adj[i], cache))):
                    _add(adj, p, g)
            if tadj[i] is not None:
                for p, g in zip(parents, _as_tuple(spec.backward(tadj[i], cache))):
                    _add(tadj, p, g)
            ts = [t[p] for p in parents]
            curved = spec.curvature and (spec.convex or not gauss_newton)
            if adj[i] is not None and curved and any(v is not None for v in ts):
                for p, g in zip(parents, spec.curvature(adj[i], cache, ts, t[i])):
                    _add(tadj, p, g)
            adj[i] = tadj[i] = t[i] = None  # passed on: dropped (memory)
        self.passes["backward"] += 1
        return tadj

    def _wrt(self, fn, wrt):
        """The Nodes asked for: None (every input), one Node, or a list or tuple of Nodes."""
        if wrt is None or isinstance(wrt, Node):
            return wrt if wrt is None else self._check_node(fn, "wrt", wrt)
        if not isinstance(wrt, (list, tuple)):
            raise TypeError(f"{fn}: argument 'wrt' must be a Node or a list of Nodes, got {type(wrt).__name__}")
        return [self._check_node(fn, f"wrt[{k}]", node) for k, node in enumerate(wrt)]

    def _collect(self, fn, values, wrt=None):
        """The values at the inputs (a dict by name) or at wrt (checked by _wrt); zeros where None."""
        def full(name, node):
            v = values[node.index]
            return np.zeros_like(node.value) if v is None else _check_finite(fn, f"the result for {name}", v)

        if wrt is None:
            return {name: full(repr(name), node) for name, node in self._inputs.items()}
        if isinstance(wrt, Node):
            return full("wrt", wrt)
        return [full(f"wrt[{k}]", node) for k, node in enumerate(wrt)]

    def backward(self, out, dout=None, wrt=None):
        """dL/dv for every input v (a dict by name), for one Node ``wrt`` (an array), or for a list of Nodes.

        One reverse sweep. Parameters: out, a Node; dout, the upstream gradient, the shape of out
        (default 1.0 for a scalar). A node used k times receives the sum of its k gradients.
        """
        fn = "Tape.backward"
        self._check_node(fn, "out", out)
        seed, wrt = self._seed(fn, out, dout), self._wrt(fn, wrt)
        keep = () if wrt is None else {wrt.index} if isinstance(wrt, Node) else {n.index for n in wrt}
        with _quiet():  # an overflow is reported once, as an error, by _collect
            return self._collect(fn, self._reverse({out.index: seed}, keep), wrt)

    def jvp(self, out, tangents):
        """J v: the tangent of ``out`` when each input moves along tangents[name] (missing names: zero)."""
        self._check_node("Tape.jvp", "out", out)
        with _quiet():
            t = self._tangents("Tape.jvp", tangents)[out.index]
        return np.zeros_like(out.value) if t is None else _check_finite("Tape.jvp", "the tangent of out", t)

    def hvp(self, out, tangents, dout=None, mode="forward-over-reverse"):
        """H v = d/dr grad L(theta + r v) at r = 0 (Pearlmutter's R-operator), a dict by input name.

        Parameters: out, a Node; tangents, a dict from input name to v (missing: zero); dout, the
        upstream gradient as in backward (default 1.0 for a scalar out), so that H is the Hessian
        of <dout, out>; mode, "forward-over-reverse" (one jvp sweep, then one reverse sweep of
        pairs) or "reverse-over-reverse" (the reverse sweep recorded by backward_graph, reversed).
        """
        fn = "Tape.hvp"
        self._check_node(fn, "out", out)
        seed = self._seed(fn, out, dout)
        if not isinstance(mode, str):
            raise TypeError(f"{fn}: argument 'mode' must be a string, got {type(mode).__name__}")
        if mode == "forward-over-reverse":
            with _quiet():
                return self._collect(fn, self._second_order(fn, out, seed, self._tangents(fn, tangents), False))
        if mode == "reverse-over-reverse":
            seeds = self._input_tangents(fn, tangents)
            with _quiet():
                graph, grads = self.backward_graph(out, dout)
                names = {node.index: name for name, node in self._inputs.items()}
                adj = graph._reverse({grads[names[i]].index: v for i, v in seeds.items() if grads[names[i]] is not None})
                return graph._collect(fn, adj)
        raise ValueError(f"{fn}: argument 'mode' must be 'forward-over-reverse' or 'reverse-over-reverse', got {mode!r}")

    def gvp(self, out, tangents):
        """G v = J^T H_loss J v, the Gauss-Newton product (positive semi-definite), a dict by input name.

        J is the Jacobian of the inputs of the losses, H_loss the losses' own Hessian: the Hessian
        without the curvature of the network's ops. Parameters: out, a scalar Node that is a loss
        or a sum of losses made with 'add'; tangents, a dict from input name to v (missing: zero).
        """
        fn = "Tape.gvp"
        self._check_node(fn, "out", out)
        seed = self._seed(fn, out, None)
        with _quiet():
            return self._collect(fn, self._second_order(fn, out, seed, self._tangents(fn, tangents), True))

    def backward_graph(self, out, dout=None):
        """The reverse sweep from ``out`` (seeded with dout, as in backward), recorded on a new tape.

        Returns (graph, grads): graph, a Tape holding this tape's nodes, then one node per output
        of every backward call (and an 'add' per sum over uses); grads, a dict from input name to
        the Node of dL/d(input) on graph (None if out does not depend on it). PyTorch's
        create_graph=True.
        """
        self._check_node("Tape.backward_graph", "out", out)
        seed = self._seed("Tape.backward_graph", out, dout)
        graph = Tape()
        for node, (op, parents, cache) in zip(self.nodes, self._records):
            copy = graph._record(op, parents, cache, node.value, node.name)
            if op is None:
                graph._inputs[node.name] = copy
        adj = [None] * len(self.nodes)
        adj[out.index] = graph._record(None, (), None, seed)  # the seed, a constant
        for i in range(out.index, -1, -1):
            op, parents, cache = self._records[i]
            if op is None or adj[i] is None:
                continue
            for k, (p, g) in enumerate(zip(parents, _as_tuple(OPS[op].backward(adj[i].value, cache)))):
                node = graph._record(_vjp_op(op, k), (adj[i].index,) + parents, _VjpCache(adj[i].value, cache), g)
                if adj[p] is not None:  # a second use: the sum is a node too
                    total = adj[p].value + g
                    node = graph._record("add", (adj[p].index, node.index), AddCache(np.shape(total)), total)
                adj[p] = node
        self.passes["backward"] += 1
        return graph, {name: adj[node.index] for name, node in self._inputs.items()}


class CGResult(NamedTuple):
    """What conjugate_gradient returns: x, the iterations made, and the relative residual ||b - A x|| / ||b||."""

    x: np.ndarray
    iterations: int
    residual: float


def conjugate_gradient(matvec, b, *, x0=None, max_iter=None, tol=1e-10):
    """x with A x = b for a symmetric positive definite A known only through matvec(v) = A v.

    Stops when ||b - A x|| <= tol ||b|| or after max_iter iterations (truncated CG; default:
    the size of b, where exact arithmetic would be done). Parameters: matvec, a function from
    a vector (P,) to a vector (P,); b (P,); x0 (P,), the start (default zeros). Returns a
    CGResult. Raises ValueError when a search direction p has p^T A p <= 0: A is not positive
    definite (a network's Hessian often is not). Chapter 10.
    """
    fn = "conjugate_gradient"
    if not callable(matvec):
        raise TypeError(f"{fn}: argument 'matvec' must be a function v -> A v, got {type(matvec).__name__}")
    b = as_float_array(fn, "b", _array(fn, "b", b), ndim=1)
    x = np.zeros_like(b) if x0 is None else _array(fn, "x0", x0).copy()
    check_same_shape(fn, "x0", x, "b", b)
    max_iter = b.size if max_iter is None else check_int(fn, "max_iter", max_iter, minimum=0)
    tol = check_real(fn, "tol", tol, low=0.0)
    norm_b = float(np.linalg.norm(b))
    r = b - _apply(fn, matvec, x) if x0 is not None else b.copy()  # the residual b - A x
    p, rr, k = r.copy(), float(r @ r), 0
    while k < max_iter and math.sqrt(rr) > tol * norm_b:
        Ap = _apply(fn, matvec, p)
        curvature = float(p @ Ap)
        if curvature <= 0.0:
            raise ValueError(f"{fn}: A is not positive definite: p^T A p = {curvature:.3g} <= 0 at iteration {k + 1}")
        alpha = rr / curvature
        x, r = x + alpha * p, r - alpha * Ap
        rr, rr_old, k = float(r @ r), rr, k + 1
        p = r + (rr / rr_old) * p
    return CGResult(x, k, math.sqrt(rr) / norm_b if norm_b else 0.0)


def _apply(fn, matvec, v):
    out = _array(fn, "matvec(v)", matvec(v))
    check_same_shape(fn, "matvec(v)", out, "b", v)
    return out


def checkpointed_gradient(layer, params, x, loss, every):
    """L and dL/d(params) of loss(f_Lambda(... f_1(x))), keeping only the input of
    every k-th layer.

    The forward pass keeps the inputs of layers 1, k + 1, 2k + 1, ...; the backward pass
    recomputes one segment of k layers at a time from its stored input, on a tape of its
    own. Memory: about Lambda / k stored inputs plus the caches of k layers, against the
    caches of all Lambda layers on one tape; time: about one more forward pass.
    Parameters: layer(tape, h, P) -> Node records one layer on ``tape`` from the Node h,
    P a dict of parameter Nodes; params, a list of Lambda dicts of arrays; x, the input
    array; loss(tape, h) -> a scalar Node; every, the integer k >= 1.
    Returns: (L, grads), grads a list of dicts like params. Chapter 10.
    """
    fn = "checkpointed_gradient"
    for name, f in (("layer", layer), ("loss", loss)):
        if not callable(f):
            raise TypeError(f"{fn}: argument '{name}' must be a function, "
                            f"got {type(f).__name__}")
    if not (isinstance(params, (list, tuple)) and params
            and all(isinstance(P, dict) for P in params)):
        raise TypeError(f"{fn}: argument 'params' must be a non-empty list of dicts "
                        "of arrays, one per layer")
    for ell, P in enumerate(params):
        for k, v in P.items():
            _array(fn, f"params[{ell}][{k!r}]", v)
    every = check_int(fn, "every", every, minimum=1)
    stored, h = {}, _array(fn, "x", x)
    # forward: each layer on a throwaway tape; only the checkpoints stay
    for ell in range(len(params)):
        if ell % every == 0:
            stored[ell] = h
        h = _segment(layer, params, ell, ell + 1, h)[0].value
    grads, dh, value = [None] * len(params), None, None
    for start in reversed(range(0, len(params), every)):
        stop = min(start + every, len(params))
        value, grads[start:stop], dh = _segment_backward(
            layer, params, start, stop, stored.pop(start), dh, loss, value)
    return value, grads


def _segment(layer, params, start, stop, h):
    """Layers start..stop-1 recorded on a new tape from the array h: (last Node, tape, input Node)."""
    tape = Tape()
    node = hn = tape.input(h, "h")
    for ell in range(start, stop):
        node = layer(tape, node, {k: tape.input(v, f"{ell}.{k}") for k, v in params[ell].items()})
        tape._check_node("checkpointed_gradient", "layer(tape, h, P)", node)
    return node, tape, hn


def _segment_backward(layer, params, start, stop, h, dh, loss, value):
    """One segment recomputed and differentiated; its tape is freed on return. dh None: the last one."""
    out, tape, _ = _segment(layer, params, start, stop, h)
    if dh is None:  # the last segment ends in the loss
        out = loss(tape, out)
        tape._check_node("checkpointed_gradient", "loss(tape, h)", out)
        if np.ndim(out.value) != 0:
            raise ValueError(f"checkpointed_gradient: loss(tape, h) must return a scalar Node, got shape {out.shape}")
        value = out.value
    g = tape.backward(out, dh)
    return value, [{k: g[f"{ell}.{k}"] for k in params[ell]} for ell in range(start, stop)], g["h"]


class Dual:
    """a + a' w with w^2 = 0: a value and a tangent; f(Dual(x, 1)).tangent = f'(x). Forward mode, chapter 10."""

    __slots__ = ("value", "tangent")

    def __init__(self, value, tangent=0.0):
        self.value, self.tangent = _real("Dual", "value", value), _real("Dual", "tangent", tangent)

    @staticmethod
    def _lift(op, other):
        if isinstance(other, Dual):
            return other
        if isinstance(other, np.ndarray) and other.shape == ():
            other = other.item()
        if isinstance(other, bool) or not isinstance(other, numbers.Real):
            raise TypeError(f"Dual.{op}: argument 'other' must be a Dual or a real number, got {type(other).__name__}")
        return Dual(check_real(f"Dual.{op}", "other", other))

    @staticmethod
    def _make(op, value, tangent):
        """The result of an operation; a value or tangent beyond the float range is an error, not an inf."""
        if not (math.isfinite(value) and math.isfinite(tangent)):
            raise ValueError(f"Dual.{op}: the result overflows a float (value {value:g}, tangent {tangent:g})")
        return Dual(value, tangent)

    def __repr__(self):
        return f"Dual(value={self.value:.6g}, tangent={self.tangent:.6g})"

    def __add__(self, other):  # (a + a'w) + (b + b'w) = (a + b) + (a' + b')w
        o = Dual._lift("__add__", other)
        return Dual._make("__add__", self.value + o.value, self.tangent + o.tangent)

    def __mul__(self, other):  # (a + a'w)(b + b'w) = ab + (a'b + ab')w, since w^2 = 0
        o = Dual._lift("__mul__", other)
        return Dual._make("__mul__", self.value * o.value,
                          self.tangent * o.value + self.value * o.tangent)

    def __truediv__(self, other):  # (a/b)' = (a'b - ab') / b^2 = (a' - (a/b) b') / b, with no b^2 to underflow
        o = Dual._lift("__truediv__", other)
        if o.value == 0.0:
            raise ZeroDivisionError("Dual.__truediv__: division by a Dual whose value is 0")
        q = self.value / o.value
        return Dual._make("__truediv__", q, (self.tangent - q * o.tangent) / o.value)

    __radd__, __rmul__ = __add__, __mul__

    def __neg__(self):
        return Dual(-self.value, -self.tangent)

    def __sub__(self, other):  # a - b = a + (-b)
        return self + (-Dual._lift("__sub__", other))

    def __rsub__(self, other):
        return Dual._lift("__rsub__", other) - self

    def __rtruediv__(self, other):
        return Dual._lift("__rtruediv__", other) / self

    def exp(self):  # (e^a)' = e^a a'
        try:
            e = math.exp(self.value)
        except OverflowError as exc:
            raise ValueError(f"Dual.exp: exp({self.value:g}) overflows a float") from exc
        return Dual._make("exp", e, e * self.tangent)

    def log(self):  # (log a)' = a' / a, for a > 0
        if self.value <= 0.0:
            raise ValueError(f"Dual.log: the value must be positive, got {self.value:g}")
        return Dual._make("log", math.log(self.value), self.tangent / self.value)

    def tanh(self):  # (tanh a)' = (1 - tanh^2 a) a'
        t = math.tanh(self.value)
        return Dual(t, (1.0 - t * t) * self.tangent)

    def sigmoid(self):  # sigma' = sigma (1 - sigma)
        s = float(activations.sigmoid(self.value))
        return Dual(s, s * (1.0 - s) * self.tangent)
