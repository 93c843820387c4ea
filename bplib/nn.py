"""Modules: the pure forward/backward pairs wrapped with their parameters (chapter 4).

A module's ``forward`` computes its output and pushes the cache of that call
onto a stack; ``backward(dout)`` pops the most recent cache, adds the
parameter gradients into ``grads`` and returns the gradient of the input. A
module used twice in one forward pass therefore holds two caches, and its
gradients are the sum over both uses (the total derivative of a shared
parameter). Calls to ``backward`` must come in the reverse order of the calls
to ``forward``, which is what a backward pass does. A call that raises
leaves no trace: a failed ``backward`` keeps its cache (fix ``dout`` and call
again), and a failed ``Sequential`` pass restores every child's caches and adds
no gradient at all. A refusal names the method that was called
(``Linear.backward: linear_backward: argument 'dy' ...``).

``params`` and ``grads`` are dicts from name to array with the same keys.
The arrays are the module's own: an optimizer updates them in place
(``p -= lr * g``), and ``zero_grad()`` sets every gradient to zero in place.
``Sequential`` names its children's entries ``"0.W"``, ``"0.b"``, ``"2.W"``, ...
The flag ``training`` (default True) is for layers that act differently at
training and at test time: batch normalization uses the batch's statistics
when training and its running statistics otherwise; the other modules ignore it.

Modules: Linear, Sigmoid, Tanh, ReLU, Sequential and HalfSquaredError (chapter 4);
SoftmaxCrossEntropy (chapter 6); Conv2d, MaxPool2d, AvgPool2d and Flatten
(chapter 7); RNN, LSTM and LastStep (chapter 8); BatchNorm1d, BatchNorm2d and LayerNorm
(chapter 9).
"""

from contextlib import contextmanager

import numpy as np

from bplib import activations, conv, linear, losses, norm, rnn
from bplib._validate import as_float_array, check_bool, check_int, check_real, check_rng, check_shape


class Module:
    """A differentiable function with parameters: forward(x) -> y, backward(dy) -> dx. Chapter 4."""

    def __init__(self):
        self.training = True
        self._caches = []
        self._pending = None  # gradients held back while an enclosing pass may still fail

    @property
    def params(self):
        """Dict from name to parameter array (empty for a module without parameters)."""
        return {}

    @property
    def grads(self):
        """Dict from name to gradient array, with the keys and shapes of ``params``."""
        return {}

    def forward(self, x):
        raise NotImplementedError

    def backward(self, dout):
        raise NotImplementedError

    def __call__(self, *args):
        return self.forward(*args)

    def zero_grad(self):
        """Set every gradient to zero, in place."""
        for g in self.grads.values():
            g.fill(0.0)

    def train(self, mode=True):
        """Set ``training`` (True: training mode, False: evaluation mode); returns self."""
        self.training = check_bool(f"{type(self).__name__}.train", "mode", mode)
        return self

    def eval(self):
        """Evaluation mode: the same as ``train(False)``."""
        return self.train(False)

    def clear_cache(self):
        """Forget the caches of forward calls that will not be followed by a backward call."""
        self._caches.clear()

    def _push(self, cache):
        self._caches.append(cache)

    def _peek(self):
        """The latest cache, left on the stack until the backward that reads it has succeeded."""
        if not self._caches:
            raise RuntimeError(f"{type(self).__name__}.backward: no cache left; every backward call needs an earlier forward call")
        return self._caches[-1]

    def _pop(self):
        cache = self._peek()
        self._caches.pop()
        return cache

    def _refusals(self, method, where=""):
        """A with-block that prefixes a TypeError or ValueError raised inside with the method the user called."""
        return _Refusals(f"{type(self).__name__}.{method}: {where}")

    def _children(self):
        return []

    def _tree(self):
        """This module and every module inside it, each once."""
        found, stack = {}, [self]
        while stack:
            m = stack.pop()
            if id(m) not in found:
                found[id(m)] = m
                stack.extend(m._children())
        return list(found.values())

    @contextmanager
    def _all_or_nothing(self):
        """A pass through this module's tree that completes or leaves no trace.

        Inside, gradients are held back; if anything raises, every module's caches are
        put back as they were and the held gradients are dropped, else they are added.
        An enclosing pass that already holds gradients back keeps that job.
        """
        tree = self._tree()
        if any(m._pending is not None for m in tree):
            yield
            return
        saved = [list(m._caches) for m in tree]
        for m in tree:
            m._pending = []
        try:
            yield
        except BaseException:
            for m, caches in zip(tree, saved):
                m._caches[:] = caches
            raise
        else:
            for m in tree:
                for grads in m._pending:
                    m._add_grads(grads)
        finally:
            for m in tree:
                m._pending = None


class _Refusals:
    """Module._refusals: a small class rather than a generator, since it wraps every call."""

    __slots__ = ("prefix",)

    def __init__(self, prefix):
        self.prefix = prefix

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        if kind is not None and issubclass(kind, (TypeError, ValueError)):
            new = TypeError if issubclass(kind, TypeError) else ValueError
            raise new(f"{self.prefix}{exc}") from exc
        return False


class _Wrapped(Module):
    """A module around one forward/backward pair: forward(x) = pair(x, *params, **options).

    ``_pair`` is (X_forward, X_backward) and ``_options()`` its keyword arguments.
    """

    _pair = None

    def _options(self):
        return {}

    def forward(self, x):
        with self._refusals("forward"):
            y, cache = self._pair[0](x, *self.params.values(), **self._options())
        self._push(cache)
        return y

    def backward(self, dout):
        with self._refusals("backward"):
            dx = self._pair[1](dout, self._peek())
        self._pop()  # only once the backward has succeeded
        return dx


class _Parametrized(_Wrapped):
    """A module whose parameters are attributes, passed to its pair after x in the order of ``_names``.

    "d" + name holds each gradient; backward adds the pair's parameter gradients into them.
    Linear writes its forward and backward out in full: chapter 4 shows it as the model module.
    """

    _names = ()

    def _init_grads(self):
        for name in self._names:
            setattr(self, "d" + name, np.zeros_like(getattr(self, name)))

    @property
    def params(self):
        return {name: getattr(self, name) for name in self._names}

    @property
    def grads(self):
        return {name: getattr(self, "d" + name) for name in self._names}

    def _accumulate(self, grads):
        """Add the gradients of one backward call, or hold them while an enclosing pass may still fail."""
        if self._pending is None:
            self._add_grads(grads)
        else:
            self._pending.append(grads)

    def _add_grads(self, grads):
        for name, g in zip(self._names, grads):
            getattr(self, "d" + name).__iadd__(g)

    def backward(self, dout):
        with self._refusals("backward"):
            dx, *grads = self._pair[1](dout, self._peek())
        self._pop()  # only once the backward has succeeded
        self._accumulate(grads)
        return dx


class Linear(_Parametrized):
    """y = x W + b, with W (D, M) and b (M,) drawn from uniform(-1/sqrt(D), 1/sqrt(D)).

    That range is the default of PyTorch's ``torch.nn.Linear``. A weight has
    variance 1/(3D), so the D terms of an output add up to a variance that does
    not grow with D. Parameters: D, M, positive integers; rng, a numpy Generator
    (the initialisation is random, so it is explicit).
    Derived in chapter 4.
    """

    _names = ("W", "b")

    def __init__(self, D, M, rng):
        super().__init__()
        D = check_int("Linear", "D", D, minimum=1)
        M = check_int("Linear", "M", M, minimum=1)
        rng = check_rng("Linear", "rng", rng)
        bound = 1.0 / np.sqrt(D)
        self.W = rng.uniform(-bound, bound, size=(D, M))  # (D, M)
        self.b = rng.uniform(-bound, bound, size=M)  # (M,)
        self._init_grads()

    def forward(self, x):
        with self._refusals("forward"):
            y, cache = linear.linear_forward(x, self.W, self.b)
        self._push(cache)
        return y

    def backward(self, dout):
        with self._refusals("backward"):
            dx, *grads = linear.linear_backward(dout, self._peek())
        self._pop()  # only once the backward has succeeded
        self._accumulate(grads)
        return dx


class Sigmoid(_Wrapped):
    """y = sigma(x), elementwise. Derived in chapter 1."""

    _pair = (activations.sigmoid_forward, activations.sigmoid_backward)


class Tanh(_Wrapped):
    """y = tanh(x), elementwise. Derived in chapter 1."""

    _pair = (activations.tanh_forward, activations.tanh_backward)


class ReLU(_Wrapped):
    """y = max(0, x), elementwise. Derived in chapter 1."""

    _pair = (activations.relu_forward, activations.relu_backward)


class _Loss(Module):
    """A loss pair as a module: forward(prediction, target) -> L, a float; backward(dloss=1.0) -> dprediction."""

    _pair = None

    def forward(self, pred, target):
        with self._refusals("forward"):
            loss, cache = self._pair[0](pred, target)
        self._push(cache)
        return loss

    def backward(self, dloss=1.0):
        with self._refusals("backward"):
            dpred = self._pair[1](dloss, self._peek())
        self._pop()  # only once the backward has succeeded
        return dpred


class HalfSquaredError(_Loss):
    """L = (1 / 2N) sum (y - t)^2: forward(y, t) -> L, backward(dloss=1.0) -> dy.

    With N = 1 this is the cost E = sum_j 1/2 (t_j - y_j)^2 of a single example.
    Derived in chapter 1.
    """

    _pair = (losses.half_squared_error_forward, losses.half_squared_error_backward)


class Sequential(Module):
    """Modules applied in order: y = f_k(... f_1(f_0(x))); backward runs them in reverse.

    Parameters of child i are named "i.<name>" (nested: "1.0.W"). A module that
    appears twice is listed once, under its first name, so an optimizer updates
    it once with the sum of its gradients. A forward or backward pass that raises
    is undone: every child keeps the caches it had, and no gradient is added.
    Used from chapter 4 on.
    """

    def __init__(self, *modules):
        super().__init__()
        for i, m in enumerate(modules):
            if not isinstance(m, Module):
                raise TypeError(f"Sequential: argument {i} must be a Module, got {type(m).__name__}")
        self.modules = list(modules)

    def _named(self, attr):
        out, seen = {}, set()
        for i, m in enumerate(self.modules):
            if id(m) in seen:
                continue
            seen.add(id(m))
            out.update({f"{i}.{k}": v for k, v in getattr(m, attr).items()})
        return out

    @property
    def params(self):
        return self._named("params")

    @property
    def grads(self):
        return self._named("grads")

    def _children(self):
        return self.modules

    def forward(self, x):
        with self._all_or_nothing():
            for i, m in enumerate(self.modules):
                with self._refusals("forward", f"module {i} ({type(m).__name__}): "):
                    x = m.forward(x)
        return x

    def backward(self, dout):
        # a failure half-way leaves no uneven caches or gradients
        with self._all_or_nothing():
            for i in reversed(range(len(self.modules))):
                m = self.modules[i]
                with self._refusals("backward", f"module {i} ({type(m).__name__}): "):
                    dout = m.backward(dout)
        return dout

    def train(self, mode=True):
        mode = check_bool("Sequential.train", "mode", mode)
        for m in self.modules:
            m.train(mode)
        return super().train(mode)

    def clear_cache(self):
        for m in self.modules:
            m.clear_cache()


class SoftmaxCrossEntropy(_Loss):
    """L = -(1/N) sum_n log softmax(z_n)[y_n]: forward(z, y) -> L, backward(dloss=1.0) -> dz.

    z are logits (N, K), y integer labels (N,). Derived in chapter 6.
    """

    _pair = (losses.softmax_cross_entropy_forward, losses.softmax_cross_entropy_backward)


def _kernel_size(kernel_size):
    """(kh, kw) from an integer k (a k x k kernel) or a pair (kh, kw)."""
    if isinstance(kernel_size, (tuple, list)):
        if len(kernel_size) != 2:
            raise ValueError(f"Conv2d: argument 'kernel_size' must be an integer or a pair (kh, kw), got {kernel_size!r}")
        return tuple(check_int("Conv2d", "kernel_size", k, minimum=1) for k in kernel_size)
    k = check_int("Conv2d", "kernel_size", kernel_size, minimum=1)
    return k, k


class Conv2d(_Parametrized):
    """y = conv2d(x, W, b) (cross-correlation): x (N, C, H, W) -> y (N, F, Ho, Wo), W (F, C, kh, kw), b (F,).

    kernel_size is an integer k (a k x k kernel) or a pair (kh, kw); Ho = (H + 2 pad - kh) // stride + 1
    and Wo = (W + 2 pad - kw) // stride + 1. Weights and biases are drawn from
    uniform(-1/sqrt(C kh kw), 1/sqrt(C kh kw)), PyTorch's default. Parameters: C, F,
    positive integers; kernel_size; rng, a numpy Generator; stride >= 1, pad >= 0.
    Uses the fast im2col pair. Derived in chapter 7.
    """

    _names = ("W", "b")
    _pair = (conv.conv2d_forward, conv.conv2d_backward)

    def __init__(self, C, F, kernel_size, rng, *, stride=1, pad=0):
        super().__init__()
        C, F = check_int("Conv2d", "C", C, minimum=1), check_int("Conv2d", "F", F, minimum=1)
        kh, kw = _kernel_size(kernel_size)
        rng = check_rng("Conv2d", "rng", rng)
        self.stride = check_int("Conv2d", "stride", stride, minimum=1)
        self.pad = check_int("Conv2d", "pad", pad, minimum=0)
        bound = 1.0 / np.sqrt(C * kh * kw)
        self.W = rng.uniform(-bound, bound, size=(F, C, kh, kw))
        self.b = rng.uniform(-bound, bound, size=F)
        self._init_grads()

    def _options(self):
        return {"stride": self.stride, "pad": self.pad}


class _Pool(_Wrapped):
    def __init__(self, size=2, stride=None):
        super().__init__()
        self.size = check_int(type(self).__name__, "size", size, minimum=1)
        self.stride = self.size if stride is None else check_int(type(self).__name__, "stride", stride, minimum=1)

    def _options(self):
        return {"size": self.size, "stride": self.stride}


class MaxPool2d(_Pool):
    """y = the maximum of each size x size window: x (N, C, H, W) -> y (N, C, Ho, Wo).

    Ho = (H - size) // stride + 1 and Wo = (W - size) // stride + 1; stride defaults
    to size (windows side by side). backward sends each window's gradient to its
    maximum. No parameters. Derived in chapter 7.
    """

    _pair = (conv.maxpool_forward, conv.maxpool_backward)


class AvgPool2d(_Pool):
    """y = the mean of each size x size window: x (N, C, H, W) -> y (N, C, Ho, Wo).

    Ho = (H - size) // stride + 1 and Wo = (W - size) // stride + 1; stride defaults
    to size. backward gives every entry of a window 1 / size^2 of its gradient. No
    parameters. Derived in chapter 7.
    """

    _pair = (conv.avgpool_forward, conv.avgpool_backward)


class Flatten(Module):
    """y = x reshaped to (N, everything else): x (N, d1, d2, ...) -> y (N, d1 d2 ...), e.g. (N, C, H, W) -> (N, C H W).

    backward reshapes dy (N, d1 d2 ...) back to x's shape. No parameters. Used in chapter 7.
    """

    def forward(self, x):
        x = as_float_array("Flatten.forward", "x", x)
        if x.ndim < 1:
            raise ValueError(f"Flatten.forward: argument 'x' must have a batch axis, got shape {x.shape}")
        self._push(x.shape)
        return x.reshape(x.shape[0], int(np.prod(x.shape[1:]))).copy()  # a new array, not a view of x

    def backward(self, dout):
        shape = self._pop()
        dout = as_float_array("Flatten.backward", "dout", dout)
        check_shape("Flatten.backward", "dout", dout, (shape[0], int(np.prod(shape[1:]))))
        return dout.reshape(shape).copy()  # a new array, not a view of the caller's dout


class RNN(_Parametrized):
    """h = rnn(x, h0), h_t = tanh(x_t Wx + h_{t-1} Wh + b); x (N, T, D) -> h (N, T, Dh).

    h0 is zero unless given to forward. Weights uniform(-1/sqrt(Dh), 1/sqrt(Dh)),
    PyTorch's default. backward(dh) takes the gradient of every hidden state
    (N, T, Dh) and returns dx; dh0 is kept in ``self.dh0``. Derived in chapter 8.
    """

    _names = ("Wx", "Wh", "b")
    _gates = 1
    _pair = (rnn.rnn_forward, rnn.rnn_backward)

    def __init__(self, D, Dh, rng):
        super().__init__()
        name = type(self).__name__
        D, Dh = check_int(name, "D", D, minimum=1), check_int(name, "Dh", Dh, minimum=1)
        rng = check_rng(name, "rng", rng)
        bound, G = 1.0 / np.sqrt(Dh), self._gates * Dh
        self.Wx = rng.uniform(-bound, bound, size=(D, G))
        self.Wh = rng.uniform(-bound, bound, size=(Dh, G))
        self.b = rng.uniform(-bound, bound, size=G)
        self.Dh, self.dh0 = Dh, None
        self._init_grads()

    def _input(self, x, h0):
        """x as a float array of shape (N, T, D), and h0 (zeros (N, Dh) if None); errors name the module."""
        fn = f"{type(self).__name__}.forward"
        x = as_float_array(fn, "x", x, ndim=3)
        return x, np.zeros((x.shape[0], self.Dh), dtype=x.dtype) if h0 is None else h0

    def forward(self, x, h0=None):
        h, cache = self._pair[0](*self._input(x, h0), self.Wx, self.Wh, self.b)
        self._push(cache)
        return h

    def backward(self, dout):
        dx, self.dh0, *grads = self._pair[1](dout, self._pop())
        self._accumulate(grads)
        return dx


class LSTM(RNN):
    """h = lstm(x, h0, c0) with gates i, f, g, o stacked in Wx (D, 4Dh), Wh (Dh, 4Dh), b (4Dh,).

    Same interface as RNN; the cell state starts at c0, zero unless given to
    forward. After a forward call ``self.c_last`` holds the final cell state
    (N, Dh), to carry into the next chunk of a stream; after a backward call
    ``self.dh0`` and ``self.dc0`` hold the gradients of the initial states.
    Derived in chapter 8.
    """

    _gates = 4
    _pair = (rnn.lstm_forward, rnn.lstm_backward)

    def forward(self, x, h0=None, c0=None):
        h, self.c_last, cache = rnn.lstm_forward(*self._input(x, h0), self.Wx, self.Wh, self.b, c0)
        self._push(cache)
        return h

    def backward(self, dout):
        dx, self.dh0, *grads, self.dc0 = rnn.lstm_backward(dout, self._pop())
        self._accumulate(grads)
        return dx


class LastStep(Module):
    """y = h[:, -1]: the last hidden state of a sequence h (N, T, Dh), for many-to-one tasks.

    backward(dy) puts dy at the last time step and zeros elsewhere, in the dtype of h
    (or of dy, if wider). Used in chapter 8.
    """

    def forward(self, h):
        h = as_float_array("LastStep.forward", "h", h, ndim=3)
        if h.shape[1] == 0:
            raise ValueError(f"LastStep.forward: argument 'h' must have at least one time step, got shape {h.shape}")
        self._push((h.shape, h.dtype))
        return h[:, -1]

    def backward(self, dout):
        if not self._caches:
            self._pop()  # raises the error that names the module
        shape, dtype = self._caches[-1]
        dout = as_float_array("LastStep.backward", "dout", dout, ndim=2)
        if dout.shape != (shape[0], shape[2]):
            raise ValueError(f"LastStep.backward: argument 'dout' has shape {dout.shape} but h[:, -1] has shape "
                             f"{(shape[0], shape[2])}")
        self._pop()  # only now: a refused dout leaves the cache for a corrected call
        dh = np.zeros(shape, dtype=np.result_type(dtype, dout))
        dh[:, -1] = dout
        return dh


class BatchNorm1d(_Parametrized):
    """y = gamma (x - mu) / sqrt(var + eps) + beta per feature, x (N, D); gamma = 1, beta = 0 at first.

    Training mode uses the batch's mean and biased variance and updates the running
    statistics (``momentum`` is the weight of the new batch); evaluation mode uses
    the running statistics. Derived in chapter 9.
    """

    _names = ("gamma", "beta")
    _pair = (norm.batchnorm_forward, norm.batchnorm_backward)

    def __init__(self, D, *, momentum=0.1, eps=1e-5):
        super().__init__()
        name = type(self).__name__
        D = check_int(name, "D", D, minimum=1)
        self.momentum = check_real(name, "momentum", momentum, low=0, high=1)
        self.eps = check_real(name, "eps", eps, low=0, low_open=True)
        self.gamma, self.beta = np.ones(D), np.zeros(D)
        self.running_mean, self.running_var = np.zeros(D), np.ones(D)
        self._init_grads()

    def forward(self, x):
        out, self.running_mean, self.running_var, cache = self._pair[0](
            x, self.gamma, self.beta, self.running_mean, self.running_var,
            training=self.training, momentum=self.momentum, eps=self.eps)
        self._push(cache)
        return out


class BatchNorm2d(BatchNorm1d):
    """Spatial batch norm of x (N, C, H, W): statistics per channel over N, H and W. Derived in chapter 9."""

    _pair = (norm.spatial_batchnorm_forward, norm.spatial_batchnorm_backward)


class LayerNorm(_Parametrized):
    """y = gamma (x - mu_n) / sqrt(var_n + eps) + beta, statistics per example over its D features.

    Acts the same in training and evaluation. Derived in chapter 9.
    """

    _names = ("gamma", "beta")
    _pair = (norm.layernorm_forward, norm.layernorm_backward)

    def __init__(self, D, *, eps=1e-5):
        super().__init__()
        D = check_int("LayerNorm", "D", D, minimum=1)
        self.eps = check_real("LayerNorm", "eps", eps, low=0, low_open=True)
        self.gamma, self.beta = np.ones(D), np.zeros(D)
        self._init_grads()

    def _options(self):
        return {"eps": self.eps}


# --- Chapter 5: dropout as a module. Its pure pair lives in bplib.autodiff (chapter 10), ---
# --- which sits below nn in CONTRIBUTING.md's import order, like the other op modules.   ---
from bplib import autodiff  # noqa: E402  (kept with the block it serves)


class Dropout(_Wrapped):
    """y = x m / (1 - p), m_i ~ Bernoulli(1 - p), in training; y = x in eval.

    Each forward call in training mode draws a new mask from ``rng``;
    backward multiplies dout by the same mask, so a dropped entry gets no
    gradient. Dividing by 1 - p keeps E[y] = x, so evaluation needs no
    rescaling. Parameters: p in [0, 1), the probability of dropping an
    entry; rng, a numpy Generator. x of any shape (N, ...). The pair is
    autodiff.dropout_forward and dropout_backward (chapter 10); used in
    chapter 5, after Srivastava et al. (2014).
    """

    _pair = (autodiff.dropout_forward, autodiff.dropout_backward)

    def __init__(self, p, rng):
        super().__init__()
        self.p = check_real("Dropout", "p", p, low=0.0, high=1.0,
                            high_open=True)
        self.rng = check_rng("Dropout", "rng", rng)

    def _options(self):
        return {"p": self.p, "rng": self.rng,
                "training": bool(self.training)}


# ---------------------------------------------------------------- chapter 7, added: LeNet's subsampling


class Subsample2d(_Parametrized):
    """z = alpha * (sum of each size x size window) + b, per map: x (N, C, H, W) -> z (N, C, Ho, Wo).

    LeNet's trainable subsampling, one coefficient alpha and one bias b per map,
    both of shape (C,). alpha starts at 1 / size^2 and b at 0, so that the layer
    starts as average pooling; LeNet follows it with a squashing activation, a
    module of its own (Tanh, Sigmoid). Ho = (H - size) // stride + 1; stride
    defaults to size. Derived in chapter 7, after LeCun et al. (1998).
    """

    _names = ("alpha", "b")
    _pair = (conv.subsample_forward, conv.subsample_backward)

    def __init__(self, C, size=2, stride=None):
        super().__init__()
        C = check_int("Subsample2d", "C", C, minimum=1)
        self.size = check_int("Subsample2d", "size", size, minimum=1)
        self.stride = self.size if stride is None else check_int("Subsample2d", "stride", stride, minimum=1)
        self.alpha = np.full(C, 1.0 / self.size**2)
        self.b = np.zeros(C)
        self._init_grads()

    def _options(self):
        return {"size": self.size, "stride": self.stride}
