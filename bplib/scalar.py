"""A scalar reverse-mode automatic differentiation engine: the Value class (chapter 2).

Every arithmetic operation on ``Value`` objects builds a new node that records
its operation (``op``), the nodes it was computed from (``parents``) and the
local partial derivatives of its result with respect to each parent
(``local_grads``). ``backward()`` then visits the graph once, from the output
back to the inputs, and applies the chain rule edge by edge:
``parent.grad += local * node.grad``.

Only a few operations carry their own derivative (+, *, ** with a numeric
exponent, exp, log, tanh, sigmoid, relu); the rest (negation, subtraction,
division and the reflected forms) are one identity each in terms of those.
The design follows the spirit of Karpathy's micrograd; this module imports
nothing of bplib (see CONTRIBUTING.md).
"""

import math
import numbers


def _check_number(fn, name, x, expected="a real number"):
    """Return ``x`` as a float if it is a finite real number (not a bool), else raise."""
    if isinstance(x, bool) or not isinstance(x, numbers.Real):
        raise TypeError(f"{fn}: argument '{name}' must be {expected}, got {type(x).__name__}")
    try:
        x = float(x)
    except OverflowError as exc:  # an int or a fraction beyond the float range, 2**2000 say
        raise ValueError(f"{fn}: argument '{name}' is too large for a float (beyond 1.8e308)") from exc
    if not math.isfinite(x):
        raise ValueError(f"{fn}: argument '{name}' must be finite, got {x!r}")
    return x


class Value:
    """A scalar that remembers how it was computed, so that backward() can differentiate it.

    Parameters: data, a finite real number; label, an optional name used when the
    graph is drawn. Attributes: data and grad (floats; grad holds dL/d(this node)
    after L.backward()), op (the operation that made the node, '' for a leaf),
    parents (the nodes it was computed from) and local_grads (the partial
    derivative of this node with respect to each parent). Derived in chapter 2.
    """

    __slots__ = ("data", "grad", "op", "parents", "local_grads", "label")
    # numpy must not treat a Value as an element of an object array: with this, array * Value
    # falls back to Value.__rmul__, which refuses the array with a clear message.
    __array_ufunc__ = None

    def __init__(self, data, label=""):
        self.data = _check_number("Value", "data", data)
        self.grad = 0.0
        self.op = ""
        self.parents = ()
        self.local_grads = ()
        if not isinstance(label, str):
            raise TypeError(f"Value: argument 'label' must be a string, got {type(label).__name__}")
        self.label = label

    @classmethod
    def _node(cls, op, data, parents, local_grads):
        """A new interior node; its value and local derivatives must be finite
        (overflow is an error, not an inf)."""
        if not (math.isfinite(data) and all(math.isfinite(g) for g in local_grads)):
            names = {"+": "__add__", "*": "__mul__"}
            method = names.get(op, "__pow__" if op.startswith("**") else op)
            raise ValueError(f"Value.{method}: the result {data!r} or its local "
                             f"derivative {local_grads} is not finite "
                             "(an overflow beyond 1.8e308)")
        out = cls(data)
        out.op, out.parents, out.local_grads = op, tuple(parents), tuple(local_grads)
        return out

    @staticmethod
    def _coerce(op, other):
        """A Value for ``other``: Values pass through, real numbers become constant leaves."""
        return other if isinstance(other, Value) else Value(_check_number(f"Value.{op}", "other", other, "a Value or a real number"))

    def __repr__(self):
        return f"Value(data={self.data:.6g}, grad={self.grad:.6g}, op={self.op!r})"

    # The primitive operations: each gives its value and its local partial derivatives.

    def __add__(self, other):  # d(a + b)/da = 1, d(a + b)/db = 1
        other = self._coerce("__add__", other)
        return Value._node("+", self.data + other.data, (self, other), (1.0, 1.0))

    def __mul__(self, other):  # d(ab)/da = b, d(ab)/db = a
        other = self._coerce("__mul__", other)
        return Value._node("*", self.data * other.data, (self, other),
                           (other.data, self.data))

    def __pow__(self, k):  # d(a^k)/da = k a^(k-1), for a number k
        if isinstance(k, Value) or isinstance(k, bool) or not isinstance(k, numbers.Real):
            raise TypeError(f"Value.__pow__: the exponent must be an int or float, got {type(k).__name__}")
        k = _check_number("Value.__pow__", "k", k)
        a = self.data
        if a == 0.0 and k < 1.0 and k != 0.0:
            raise ValueError(f"Value.__pow__: 0 ** {k:g} has no finite derivative (for k < 0, a division by zero)")
        if a < 0.0 and not k.is_integer():
            raise ValueError(f"Value.__pow__: a negative base ({a:g}) to the non-integer power {k:g} is not real")
        try:
            data, local = a**k, (0.0 if k == 0.0 else k * a ** (k - 1.0))
        except OverflowError as exc:
            raise ValueError(f"Value.__pow__: {a:g} ** {k:g} overflows a float") from exc
        return Value._node(f"**{k:g}", data, (self,), (local,))

    def exp(self):  # d(e^a)/da = e^a
        try:
            e = math.exp(self.data)
        except OverflowError as exc:
            raise ValueError(f"Value.exp: exp({self.data:g}) overflows a float") from exc
        return Value._node("exp", e, (self,), (e,))

    def log(self):  # d(log a)/da = 1 / a, for a > 0
        if self.data <= 0.0:
            raise ValueError(f"Value.log: the argument must be positive, got {self.data:g}")
        return Value._node("log", math.log(self.data), (self,), (1.0 / self.data,))

    def tanh(self):  # d(tanh a)/da = 1 - tanh(a)^2
        t = math.tanh(self.data)
        return Value._node("tanh", t, (self,), (1.0 - t * t,))

    def sigmoid(self):  # d(sigma(a))/da = sigma(a) (1 - sigma(a))
        # exp of a non-positive number cannot overflow: use e^-|a| on both sides of 0.
        e = math.exp(-abs(self.data))
        s = 1.0 / (1.0 + e) if self.data >= 0.0 else e / (1.0 + e)
        return Value._node("sigmoid", s, (self,), (s * (1.0 - s),))

    def relu(self):  # d(max(0, a))/da = 1 if a > 0 else 0 (0 at the kink, as in PyTorch)
        return Value._node("relu", max(0.0, self.data), (self,), (1.0 if self.data > 0.0 else 0.0,))

    # Derived operations: one identity each, differentiated through the primitives above.

    def __neg__(self):  # -a = a * (-1)
        return self * -1.0

    def __radd__(self, other):  # b + a = a + b
        return self + self._coerce("__radd__", other)

    def __sub__(self, other):  # a - b = a + (-b)
        return self + (-self._coerce("__sub__", other))

    def __rsub__(self, other):  # b - a = (-a) + b
        return (-self) + self._coerce("__rsub__", other)

    def __rmul__(self, other):  # b * a = a * b
        return self * self._coerce("__rmul__", other)

    def __truediv__(self, other):  # a / b = a * b^(-1)
        return self * self._coerce("__truediv__", other) ** -1

    def __rtruediv__(self, other):  # b / a = a^(-1) * b
        return self**-1 * self._coerce("__rtruediv__", other)

    # The backward sweep.

    def topological_order(self):
        """Every node this Value depends on, each after all of its parents; self comes last.

        An iterative depth-first search, so a chain of any length is safe from
        Python's recursion limit. Returns: a list of Values.
        """
        order, visited = [], set()
        stack = [(self, False)]
        while stack:
            node, parents_done = stack.pop()
            if parents_done:
                order.append(node)
            elif node not in visited:
                visited.add(node)
                stack.append((node, True))
                stack.extend((p, False) for p in reversed(node.parents) if p not in visited)
        return order

    def backward(self):
        """Fill in grad = d(self)/d(node) for every node of the graph by one reverse sweep.

        Interior nodes are reset first; leaves accumulate (+=) across calls, as in
        PyTorch, so call zero_grad() between independent backward passes. Every value
        and local derivative is finite (checked when the node is made), but a product
        of them along a path can still leave the float range and make a grad inf.
        Derived in chapter 2.
        """
        order = self.topological_order()
        for node in order:
            if node.parents:
                node.grad = 0.0
        self.grad += 1.0  # d(self)/d(self); self was reset above unless it is a leaf
        for node in reversed(order):
            for parent, local in zip(node.parents, node.local_grads, strict=True):
                parent.grad += local * node.grad  # the chain rule along one edge

    def zero_grad(self):
        """Set grad to 0 on every node of the graph that ends in this Value."""
        for node in self.topological_order():
            node.grad = 0.0
