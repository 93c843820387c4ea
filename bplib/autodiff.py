"""Backpropagation as reverse-mode differentiation over the pairs of chapters 1 to 6 (chapter 10).

A ``Tape`` records a program as it runs: each ``apply`` calls an op's forward
function and keeps the op's name, its input nodes and its cache. ``backward``
replays the record in reverse, calling each op's backward function and summing
the gradients of a node used more than once. Every op is registered in one
table, ``OPS``, with its forward/backward pair, the names of its differentiable
(positional) arguments, a ``jvp`` rule for forward mode and a ``curvature``
rule for Hessian-vector products. Keyword arguments of an op (labels, targets,
p, rng, lam) are constants. ``Dual`` numbers do forward mode on scalars.

Shapes use the glossary of bplib: x (N, D), W (D, M), b (M,), logits z (N, K).
"""

import math
from collections import namedtuple
from typing import NamedTuple

import numpy as np

from bplib import activations, linear, losses
from bplib._validate import as_float_array, check_cache, check_real, check_rng, check_same_shape, check_shape


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
    """out = x * m / (1 - p), m_i ~ Bernoulli(1 - p) drawn from rng; out = a copy of x when not training.

    Parameters: x, array of any shape; p, the probability of dropping an entry, in [0, 1);
    rng, a numpy Generator; training, a bool. Returns: (out, cache), out the shape of x;
    the cache keeps the scaled mask m / (1 - p). Derived in chapter 10.
    """
    fn = "dropout_forward"
    x = as_float_array(fn, "x", x)
    p = check_real(fn, "p", p, low=0.0, high=1.0, high_open=True)
    rng = check_rng(fn, "rng", rng)
    if not isinstance(training, bool):
        raise TypeError(f"{fn}: argument 'training' must be a bool, got {type(training).__name__}")
    if not training:
        return x.copy(), DropoutCache(np.ones_like(x))  # a new array, as in training: out never aliases x
    scale = ((rng.random(x.shape) >= p) / (1.0 - p)).astype(x.dtype)  # keep with prob. 1 - p
    return x * scale, DropoutCache(scale)


def dropout_backward(dout, cache):
    """dx = dout * m / (1 - p): the same mask, so a dropped entry gets no gradient.

    Parameters: dout, the shape of x; cache from dropout_forward. Returns: dx, the shape of x.
    Derived in chapter 10.
    """
    scale = check_cache("dropout_backward", cache, DropoutCache).scale
    dout = as_float_array("dropout_backward", "dout", dout)
    check_same_shape("dropout_backward", "dout", dout, "x", scale)
    return dout * scale


def l2_penalty_forward(W, lam):
    """R = (lam / 2) ||W||^2 = (lam / 2) sum_ij W_ij^2.

    Parameters: W, array of any shape; lam, a coefficient >= 0. Returns: (R, cache), R a float.
    Derived in chapter 5; a pair in chapter 10.
    """
    W = as_float_array("l2_penalty_forward", "W", W)
    lam = check_real("l2_penalty_forward", "lam", lam, low=0.0)
    return float(0.5 * lam * np.sum(W * W)), L2PenaltyCache(W, lam)


def l2_penalty_backward(dR, cache):
    """dW = dR lam W.

    Parameters: dR, a float; cache from l2_penalty_forward. Returns: dW, the shape of W.
    Derived in chapter 10.
    """
    cache = check_cache("l2_penalty_backward", cache, L2PenaltyCache)
    return check_real("l2_penalty_backward", "dR", dR) * cache.lam * cache.W


def _scalar_or_array(v):
    return float(v) if np.ndim(v) == 0 else v


def add_forward(a, b):
    """out = a + b, for a and b of the same shape (for example a loss and a penalty).

    Parameters: a, b, numbers or arrays of one shape. Returns: (out, cache). Derived in chapter 10.
    """
    a, b = as_float_array("add_forward", "a", a), as_float_array("add_forward", "b", b)
    check_same_shape("add_forward", "a", a, "b", b)
    return _scalar_or_array(a + b), AddCache(a.shape)


def add_backward(dout, cache):
    """da = dout, db = dout: addition copies the upstream gradient to both terms.

    Parameters: dout, the shape of out; cache from add_forward. Returns: (da, db). Derived in chapter 10.
    """
    shape = check_cache("add_backward", cache, AddCache).shape
    dout = as_float_array("add_backward", "dout", dout)
    check_shape("add_backward", "dout", dout, shape)
    return _scalar_or_array(dout), _scalar_or_array(dout)


# One row of OPS: the pair; the names of the differentiable (positional) arguments; jvp(cache,
# *tangents), the tangent of the output; and curvature(dout, cache, tangents, out_tangent), per
# argument the part of the tangent of backward(dout, cache) that comes from the cache moving
# (None for zero). The rest of that tangent is backward(tangent of dout, cache): backward is
# linear in dout.
Op = namedtuple("Op", "forward backward args jvp curvature", defaults=(None,))


def _loss_jvp(backward):
    # A scalar output f(u): its tangent is <grad f, u_dot>, and backward(1.0) is grad f.
    return lambda c, *ts: float(sum(np.sum(g * t) for g, t in zip(_as_tuple(backward(1.0, c)), ts)))


def _softmax_jvp(s, t):
    return s * (t - np.sum(s * t, axis=-1, keepdims=True))  # (N, K): (diag(s) - s s^T) t, row by row


OPS = {
    "linear": Op(linear.linear_forward, linear.linear_backward, ("x", "W", "b"),
                 lambda c, tx, tW, tb: tx @ c.W + c.x @ tW + tb,
                 lambda dy, c, ts, to: (dy @ ts[1].T, ts[0].T @ dy, None)),
    "sigmoid": Op(activations.sigmoid_forward, activations.sigmoid_backward, ("x",),
                  lambda c, t: t * c.out * (1.0 - c.out),
                  lambda d, c, ts, to: (d * (1.0 - 2.0 * c.out) * to,)),
    "tanh": Op(activations.tanh_forward, activations.tanh_backward, ("x",),
               lambda c, t: t * (1.0 - c.out * c.out),
               lambda d, c, ts, to: (-2.0 * d * c.out * to,)),
    "relu": Op(activations.relu_forward, activations.relu_backward, ("x",),
               lambda c, t: np.where(c.x > 0, t, 0.0)),
    "dropout": Op(dropout_forward, dropout_backward, ("x",), lambda c, t: t * c.scale),
    "add": Op(add_forward, add_backward, ("a", "b"), lambda c, ta, tb: ta + tb),
    "l2_penalty": Op(l2_penalty_forward, l2_penalty_backward, ("W",), _loss_jvp(l2_penalty_backward),
                     lambda d, c, ts, to: (d * c.lam * ts[0],)),
    "half_squared_error": Op(losses.half_squared_error_forward, losses.half_squared_error_backward, ("y",),
                             _loss_jvp(losses.half_squared_error_backward),
                             lambda d, c, ts, to: (d * ts[0] / c.n,)),
    "bce_with_logits": Op(losses.binary_cross_entropy_with_logits_forward, losses.binary_cross_entropy_with_logits_backward,
                          ("z",), _loss_jvp(losses.binary_cross_entropy_with_logits_backward),
                          lambda d, c, ts, to: (d * activations.sigmoid_prime(c.z) * ts[0] / c.z.shape[0],)),
    "softmax_cross_entropy": Op(losses.softmax_cross_entropy_forward, losses.softmax_cross_entropy_backward, ("z",),
                                _loss_jvp(losses.softmax_cross_entropy_backward),
                                lambda d, c, ts, to: (d * _softmax_jvp(c.s, ts[0]) / c.s.shape[0],)),
}


def _as_tuple(grads):
    return grads if isinstance(grads, tuple) else (grads,)


def _add(acc, i, g):
    if g is not None:
        acc[i] = g if acc[i] is None else acc[i] + g  # never in place: g may be another node's array


class Node:
    """A value on a tape: ``value`` (a float or an array), its ``index`` on the tape, and ``name`` for inputs."""

    __slots__ = ("tape", "index", "value", "name")

    def __init__(self, tape, index, value, name=None):
        self.tape, self.index, self.value, self.name = tape, index, value, name

    @property
    def shape(self):
        return np.shape(self.value)

    def __repr__(self):
        return f"Node({self.name or self.tape._records[self.index][0]}, shape={self.shape})"


class Tape:
    """The record of a forward pass: (op, input nodes, cache) per node; backward replays it in reverse.

    ``passes`` counts the sweeps made so far: {"backward": ..., "jvp": ...}. Derived in chapter 10.
    """

    def __init__(self):
        self.nodes, self._records, self._inputs = [], [], {}
        self.passes = {"backward": 0, "jvp": 0}

    def _record(self, op, parents, cache, value, name=None):
        node = Node(self, len(self.nodes), value, name)
        self.nodes.append(node)
        self._records.append((op, tuple(parents), cache))
        return node

    def input(self, value, name=None):
        """A leaf node holding ``value`` (an array or a number, not copied); ``name`` keys the gradient dict."""
        value = as_float_array("Tape.input", "value", value)
        name = f"input{len(self._inputs)}" if name is None else name
        if not isinstance(name, str):
            raise TypeError(f"Tape.input: argument 'name' must be a string, got {type(name).__name__}")
        if name in self._inputs:
            raise ValueError(f"Tape.input: argument 'name' is already used by another input: {name!r}")
        self._inputs[name] = node = self._record(None, (), None, value, name)
        return node

    def _check_node(self, fn, name, node):
        if not isinstance(node, Node):
            raise TypeError(f"{fn}: argument '{name}' must be a Node of this tape, got {type(node).__name__}")
        if node.tape is not self:
            raise ValueError(f"{fn}: argument '{name}' is a Node of another tape")

    def apply(self, op, *args, **constants):
        """out = OPS[op].forward(*values of args, **constants), recorded; returns the output Node.

        Positional arguments are the op's differentiable inputs, as Nodes of this tape; keyword
        arguments are constants passed to the forward function as they are.
        """
        if op not in OPS:
            raise ValueError(f"Tape.apply: unknown op {op!r}; registered ops: {', '.join(sorted(OPS))}")
        spec = OPS[op]
        if len(args) != len(spec.args):
            raise TypeError(f"Tape.apply: op '{op}' takes {len(spec.args)} Nodes ({', '.join(spec.args)}), got {len(args)}")
        for name, node in zip(spec.args, args):
            self._check_node(f"Tape.apply('{op}')", name, node)
        for name, value in constants.items():
            if isinstance(value, Node):
                raise TypeError(f"Tape.apply('{op}'): keyword argument '{name}' is a constant and must not be a Node")
        value, cache = spec.forward(*(n.value for n in args), **constants)
        return self._record(op, (n.index for n in args), cache, value)

    def _seed(self, fn, out, dout):
        if dout is None:
            if np.ndim(out.value) != 0:
                raise ValueError(f"{fn}: argument 'dout' is needed when 'out' is not a scalar (shape {out.shape})")
            return 1.0
        if np.ndim(out.value) == 0:
            return check_real(fn, "dout", dout)
        dout = as_float_array(fn, "dout", dout)
        check_shape(fn, "dout", dout, out.shape)
        return dout

    def _tangents(self, tangents):
        """The tangent of every node, given tangents of some inputs (the rest zero): one jvp sweep."""
        if not isinstance(tangents, dict):
            raise TypeError(f"Tape.jvp: argument 'tangents' must be a dict from input name to array, got {type(tangents).__name__}")
        t = [None] * len(self.nodes)
        for name, node in self._inputs.items():
            v = tangents.get(name, np.zeros_like(node.value))
            t[node.index] = as_float_array("Tape.jvp", f"tangents['{name}']", v)
            check_shape("Tape.jvp", f"tangents['{name}']", t[node.index], node.shape)
        if set(tangents) - set(self._inputs):
            raise ValueError(f"Tape.jvp: argument 'tangents' names no input: {sorted(set(tangents) - set(self._inputs))}")
        for i, (op, parents, cache) in enumerate(self._records):
            if op is not None:
                t[i] = OPS[op].jvp(cache, *(t[p] for p in parents))
        self.passes["jvp"] += 1
        return t

    def _reverse(self, out, seed, t=None):
        """Adjoints of every node (and, given tangents t, the tangents of the adjoints): one reverse sweep."""
        adj, tadj = [None] * len(self.nodes), [None] * len(self.nodes)
        adj[out.index], tadj[out.index] = seed, 0.0
        for i in range(out.index, -1, -1):
            op, parents, cache = self._records[i]
            if op is None or adj[i] is None:
                continue
            spec = OPS[op]
            for p, g in zip(parents, _as_tuple(spec.backward(adj[i], cache))):
                _add(adj, p, g)
            if t is not None:
                extra = spec.curvature(adj[i], cache, [t[p] for p in parents], t[i]) if spec.curvature else (None,) * len(parents)
                for p, g, e in zip(parents, _as_tuple(spec.backward(tadj[i], cache)), extra):
                    _add(tadj, p, g if e is None else g + e)
        self.passes["backward"] += 1
        return adj, tadj

    def _collect(self, values, wrt):
        def full(node):
            v = values[node.index]
            return np.zeros_like(node.value) if v is None else v

        if wrt is None:
            return {name: full(node) for name, node in self._inputs.items()}
        for k, node in enumerate(wrt):
            self._check_node("Tape.backward", f"wrt[{k}]", node)
        return [full(node) for node in wrt]

    def backward(self, out, dout=None, wrt=None):
        """dL/dv for every input v (a dict by name), or for the Nodes in ``wrt`` (a list), by one reverse sweep.

        Parameters: out, a Node; dout, the upstream gradient, the shape of out (default 1.0 for a scalar).
        A node used k times receives the sum of its k gradients (the total derivative).
        """
        self._check_node("Tape.backward", "out", out)
        return self._collect(self._reverse(out, self._seed("Tape.backward", out, dout))[0], wrt)

    def jvp(self, out, tangents):
        """J v: the tangent of ``out`` when each input moves along tangents[name] (missing names: zero)."""
        self._check_node("Tape.jvp", "out", out)
        return self._tangents(tangents)[out.index]

    def hvp(self, out, tangents):
        """H v = d/de grad L(theta + e v) at e = 0, by forward over reverse (Pearlmutter's R-operator).

        Parameters: out, a scalar Node L; tangents, a dict from input name to v. Returns a dict by name.
        """
        self._check_node("Tape.hvp", "out", out)
        self._seed("Tape.hvp", out, None)
        return self._collect(self._reverse(out, 1.0, self._tangents(tangents))[1], None)


class Dual:
    """a + a' e with e^2 = 0: a value and a tangent; f(Dual(x, 1)).tangent = f'(x). Forward mode, chapter 10."""

    __slots__ = ("value", "tangent")

    def __init__(self, value, tangent=0.0):
        self.value, self.tangent = check_real("Dual", "value", value), check_real("Dual", "tangent", tangent)

    @staticmethod
    def _lift(other):
        return other if isinstance(other, Dual) else Dual(check_real("Dual", "other", other))

    def __repr__(self):
        return f"Dual(value={self.value:.6g}, tangent={self.tangent:.6g})"

    def __add__(self, other):  # (a + a'e) + (b + b'e) = (a + b) + (a' + b')e
        o = Dual._lift(other)
        return Dual(self.value + o.value, self.tangent + o.tangent)

    def __mul__(self, other):  # (a + a'e)(b + b'e) = ab + (a'b + ab')e, since e^2 = 0
        o = Dual._lift(other)
        return Dual(self.value * o.value, self.tangent * o.value + self.value * o.tangent)

    def __truediv__(self, other):  # (a/b)' = (a'b - ab') / b^2
        o = Dual._lift(other)
        if o.value == 0.0:
            raise ZeroDivisionError("Dual.__truediv__: division by a Dual whose value is 0")
        return Dual(self.value / o.value, (self.tangent * o.value - self.value * o.tangent) / o.value**2)

    __radd__, __rmul__ = __add__, __mul__

    def __neg__(self):
        return Dual(-self.value, -self.tangent)

    def __sub__(self, other):  # a - b = a + (-b)
        return self + (-Dual._lift(other))

    def __rsub__(self, other):
        return Dual._lift(other) - self

    def __rtruediv__(self, other):
        return Dual._lift(other) / self

    def exp(self):  # (e^a)' = e^a a'
        try:
            e = math.exp(self.value)
        except OverflowError as exc:
            raise ValueError(f"Dual.exp: exp({self.value:g}) overflows a float") from exc
        return Dual(e, e * self.tangent)

    def log(self):  # (log a)' = a' / a, for a > 0
        if self.value <= 0.0:
            raise ValueError(f"Dual.log: the value must be positive, got {self.value:g}")
        return Dual(math.log(self.value), self.tangent / self.value)

    def tanh(self):  # (tanh a)' = (1 - tanh^2 a) a'
        t = math.tanh(self.value)
        return Dual(t, (1.0 - t * t) * self.tangent)

    def sigmoid(self):  # sigma' = sigma (1 - sigma)
        s = float(activations.sigmoid(self.value))
        return Dual(s, s * (1.0 - s) * self.tangent)
