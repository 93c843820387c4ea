"""bplib: the numpy code of *Backpropagation, Derived*.

One module per chapter topic; every op is a pure pair
``X_forward(...) -> (out, cache)`` and ``X_backward(dout, cache) -> grads``.
Import the modules you need, for example ``from bplib import activations``.
"""

__version__ = "0.1.0"
