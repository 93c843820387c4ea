"""Modules: the pure forward/backward pairs wrapped with their parameters (chapter 4).

A module's ``forward`` computes its output and pushes the cache of that call
onto a stack; ``backward(dout)`` pops the most recent cache, adds the
parameter gradients into ``grads`` and returns the gradient of the input. A
module used twice in one forward pass therefore holds two caches, and its
gradients are the sum over both uses (the total derivative of a shared
parameter). Calls to ``backward`` must come in the reverse order of the calls
to ``forward``, which is what a backward pass does.

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

import numpy as np

from bplib import activations, conv, linear, losses, norm, rnn
from bplib._validate import as_float_array, check_int, check_real, check_rng, check_shape


class Module:
    """A differentiable function with parameters: forward(x) -> y, backward(dy) -> dx. Chapter 4."""

    def __init__(self):
        self.training = True
        self._caches = []

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
        self.training = bool(mode)
        return self

    def eval(self):
        """Evaluation mode: the same as ``train(False)``."""
        return self.train(False)

    def clear_cache(self):
        """Forget the caches of forward calls that will not be followed by a backward call."""
        self._caches.clear()

    def _push(self, cache):
        self._caches.append(cache)

    def _pop(self):
        if not self._caches:
            raise RuntimeError(f"{type(self).__name__}.backward: no cache left; every backward call needs an earlier forward call")
        return self._caches.pop()


class _Wrapped(Module):
    """A module around one forward/backward pair: forward(x) = pair(x, *params, **options).

    ``_pair`` is (X_forward, X_backward) and ``_options()`` its keyword arguments.
    """

    _pair = None

    def _options(self):
        return {}

    def forward(self, x):
        y, cache = self._pair[0](x, *self.params.values(), **self._options())
        self._push(cache)
        return y

    def backward(self, dout):
        return self._pair[1](dout, self._pop())


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
        for name, g in zip(self._names, grads):
            getattr(self, "d" + name).__iadd__(g)

    def backward(self, dout):
        dx, *grads = self._pair[1](dout, self._pop())
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
        y, cache = linear.linear_forward(x, self.W, self.b)
        self._push(cache)
        return y

    def backward(self, dout):
        dx, *grads = linear.linear_backward(dout, self._pop())
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
        loss, cache = self._pair[0](pred, target)
        self._push(cache)
        return loss

    def backward(self, dloss=1.0):
        return self._pair[1](dloss, self._pop())


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
    it once with the sum of its gradients. Used from chapter 4 on.
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

    def forward(self, x):
        for m in self.modules:
            x = m.forward(x)
        return x

    def backward(self, dout):
        for m in reversed(self.modules):
            dout = m.backward(dout)
        return dout

    def train(self, mode=True):
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


class Conv2d(_Parametrized):
    """y = conv2d(x, W, b) (cross-correlation), x (N, C, H, W), W (F, C, kh, kw), b (F,).

    Weights and biases are drawn from uniform(-1/sqrt(C kh kw), 1/sqrt(C kh kw)),
    PyTorch's default. Uses the fast im2col pair. Derived in chapter 7.
    """

    _names = ("W", "b")
    _pair = (conv.conv2d_forward, conv.conv2d_backward)

    def __init__(self, C, F, kernel_size, rng, *, stride=1, pad=0):
        super().__init__()
        C, F = check_int("Conv2d", "C", C, minimum=1), check_int("Conv2d", "F", F, minimum=1)
        k = check_int("Conv2d", "kernel_size", kernel_size, minimum=1)
        rng = check_rng("Conv2d", "rng", rng)
        self.stride = check_int("Conv2d", "stride", stride, minimum=1)
        self.pad = check_int("Conv2d", "pad", pad, minimum=0)
        bound = 1.0 / np.sqrt(C * k * k)
        self.W = rng.uniform(-bound, bound, size=(F, C, k, k))
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
    """y = the maximum of each size x size window (stride defaults to size). Derived in chapter 7."""

    _pair = (conv.maxpool_forward, conv.maxpool_backward)


class AvgPool2d(_Pool):
    """y = the mean of each size x size window (stride defaults to size). Derived in chapter 7."""

    _pair = (conv.avgpool_forward, conv.avgpool_backward)


class Flatten(Module):
    """y = x reshaped to (N, everything else); backward reshapes back. Used in chapter 7."""

    def forward(self, x):
        x = as_float_array("Flatten.forward", "x", x)
        if x.ndim < 1:
            raise ValueError(f"Flatten.forward: argument 'x' must have a batch axis, got shape {x.shape}")
        self._push(x.shape)
        return x.reshape(x.shape[0], int(np.prod(x.shape[1:])))

    def backward(self, dout):
        shape = self._pop()
        dout = as_float_array("Flatten.backward", "dout", dout)
        check_shape("Flatten.backward", "dout", dout, (shape[0], int(np.prod(shape[1:]))))
        return dout.reshape(shape)


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
# --- which sits below nn in DESIGN.md's import order, like the other op modules.         ---
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
