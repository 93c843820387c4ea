"""Benchmark cases for bplib.scalar.Value: building a graph (forward) and one backward sweep."""

from common import Case

from bplib.scalar import Value


def _mazur_loss(w, b, x=(0.05, 0.10), t=(0.01, 0.99)):
    """E = sum_j 1/2 (t_j - o_j)^2 of the 2-2-2 sigmoid network of chapter 2."""
    h = [(w[2 * j] * x[0] + w[2 * j + 1] * x[1] + b[0]).sigmoid() for j in range(2)]
    o = [(w[4 + 2 * j] * h[0] + w[5 + 2 * j] * h[1] + b[1]).sigmoid() for j in range(2)]
    return sum(0.5 * (t[j] - o[j]) ** 2 for j in range(2))


def _mlp_loss(x, layers, t):
    """1/2 (y - t)^2 of a tanh network with a linear output; layers is a list of (W, b)."""
    a = x
    for k, (W, b) in enumerate(layers):
        z = [sum((w_jk * a_k for w_jk, a_k in zip(row, a, strict=True)), b_j) for row, b_j in zip(W, b, strict=True)]
        a = z if k == len(layers) - 1 else [z_j.tanh() for z_j in z]
    return 0.5 * (a[0] - t) ** 2


def _case(op, build, leaves):
    out = build()
    size = f"{len(out.topological_order())} nodes"

    def backward():
        for leaf in leaves:  # leaves accumulate; reset them so every call does the same work
            leaf.grad = 0.0
        out.backward()

    return Case(op, size, build, backward)


def cases(rng):
    w = [Value(v) for v in (0.15, 0.20, 0.25, 0.30, 0.40, 0.45, 0.50, 0.55)]
    b = [Value(0.35), Value(0.60)]
    sizes = [4, 16, 16, 1]
    layers = [([[Value(float(v)) for v in row] for row in rng.standard_normal((m, d)) / d**0.5], [Value(0.0) for _ in range(m)])
              for d, m in zip(sizes[:-1], sizes[1:], strict=True)]
    x = [Value(float(v)) for v in rng.standard_normal(4)]
    params = [p for W, bias in layers for p in [v for row in W for v in row] + bias]
    return [
        _case("Value: 2-2-2 sigmoid net loss", lambda: _mazur_loss(w, b), w + b),
        _case("Value: 4-16-16-1 tanh MLP loss", lambda: _mlp_loss(x, layers, 0.5), params + x),
    ]
