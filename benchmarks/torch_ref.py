"""PyTorch references for the bplib cases, used when PyTorch happens to be installed.

PyTorch is not a dependency of the course: without it, ``pair`` returns None
and the table simply has no PyTorch column entries. With it, ``pair(fn, *arrays)``
times the same op on the same arrays with PyTorch's autograd on the CPU, in
float64 (the arrays' dtype) and on as many threads as numpy's BLAS uses (run.py
sets BPLIB_BENCH_THREADS):
the forward call builds the graph (as in training), the backward call runs
``torch.autograd.grad`` on one graph made beforehand.
"""

import os

torch = None
if os.environ.get("BPLIB_BENCH_TORCH") != "off":  # run.py times bplib in a process without PyTorch
    try:
        import torch
    except ImportError:  # the usual case: nothing to compare with
        pass


if torch is not None:  # run.py passes numpy's BLAS thread count; 1 when run on its own
    torch.set_num_threads(int(os.environ.get("BPLIB_BENCH_THREADS", "1")))


def version():
    """'PyTorch <version> on <n> threads', or None without PyTorch."""
    return None if torch is None else f"PyTorch {torch.__version__} on {torch.get_num_threads()} threads"


def fn(path, **kwargs):
    """The PyTorch function at ``path`` (``"sigmoid"``, ``"nn.functional.conv2d"``) with keyword arguments
    bound, or None without PyTorch."""
    if torch is None:
        return None
    f = torch
    for part in path.split("."):
        f = getattr(f, part)
    return (lambda *args: f(*args, **kwargs)) if kwargs else f


def pair(f, *arrays, constants=()):
    """(forward, backward) of f(*tensors, *constants) in PyTorch, gradients for every array; None without PyTorch.

    ``f`` receives the arrays as tensors that require a gradient, then the
    constants (labels or targets; numpy arrays become tensors); it returns one tensor.
    """
    if torch is None:
        return None
    inputs = [torch.tensor(a, requires_grad=True) for a in arrays]
    constants = [torch.tensor(c) if hasattr(c, "dtype") else c for c in constants]
    out = f(*inputs, *constants)
    dout = torch.ones_like(out)

    def forward():
        return f(*inputs, *constants)

    def backward():
        return torch.autograd.grad(out, inputs, dout, retain_graph=True)

    return forward, backward


def module_pair(module, x, *state, parameters=None):
    """(forward, backward) of a torch.nn module (float64) on x and initial state, gradients for x, the state
    and every parameter (``parameters``, by default the module's); None without PyTorch."""
    if torch is None:
        return None
    inputs = [torch.tensor(a, requires_grad=True) for a in (x, *state)]
    params = list(module.parameters()) if parameters is None else parameters
    out = module(*inputs)[0]
    dout = torch.ones_like(out)

    def forward():
        return module(*inputs)[0]

    def backward():
        return torch.autograd.grad(out, inputs + params, dout, retain_graph=True)

    return forward, backward
