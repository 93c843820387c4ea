"""Every backward of bplib refuses every other op's cache, by name (CONTRIBUTING.md, section 3).

Each forward returns its cache as a NamedTuple of its own type whose class
attribute ``made_by`` names that forward. This file finds every ``*_backward``
function in the package, runs the matching forward once, and checks that the
backward accepts its own cache and refuses the cache of every other forward with
a TypeError that names the backward, the forward it expected and the forward
the cache came from. A new pair must be added to ``CALLS`` below, or
``test_every_backward_is_covered`` fails.
"""

import importlib
import inspect
import pkgutil

import numpy as np
import pytest

import bplib
from bplib import activations, autodiff, conv, linear, losses, norm, rnn

MODULES = [importlib.import_module(f"bplib.{m.name}") for m in pkgutil.iter_modules(bplib.__path__)]


def _defined_here(module, predicate):
    return {name: obj for name, obj in vars(module).items() if predicate(obj) and getattr(obj, "__module__", None) == module.__name__}


def _is_op_backward(f):
    """A public function named like X_backward (or X_backward_steps) that takes a cache."""
    return (inspect.isfunction(f) and "_backward" in f.__name__ and not f.__name__.startswith("_")
            and "cache" in inspect.signature(f).parameters)


def _backwards():
    found = {}
    for module in MODULES:
        found |= _defined_here(module, _is_op_backward)
    return found


def _cache_types():
    found = {}
    for module in MODULES:
        found |= _defined_here(module, lambda c: inspect.isclass(c) and issubclass(c, tuple) and hasattr(c, "made_by"))
    return found


RNG = np.random.default_rng(0)
X = RNG.standard_normal((3, 4))  # (N, D)
T01 = RNG.random((3, 4))  # targets in [0, 1]
P = RNG.uniform(0.1, 0.9, (3, 4))  # probabilities
Y = np.array([0, 3, 1])  # labels for K = 4 classes
IMG = RNG.standard_normal((2, 2, 5, 5))  # (N, C, H, W)
KER, KB = RNG.standard_normal((3, 2, 3, 3)), RNG.standard_normal(3)  # (F, C, kh, kw), (F,)
SEQ, H0 = RNG.standard_normal((3, 2, 4)), RNG.standard_normal((3, 5))  # (N, T, D), (N, Dh)
G4 = np.ones(4), np.zeros(4), np.zeros(4), np.ones(4)  # gamma, beta, running_mean, running_var (D = 4)
G2 = np.ones(2), np.zeros(2), np.zeros(2), np.ones(2)  # the same for C = 2 channels


def _rnn_weights(gates):
    return RNG.standard_normal((4, gates * 5)), RNG.standard_normal((5, gates * 5)), RNG.standard_normal(gates * 5)


RNN_W, LSTM_W = _rnn_weights(1), _rnn_weights(4)

# backward name -> (forward, its arguments, backward(upstream, cache) with the other arguments filled in).
# The upstream gradient is 1.0 for a scalar output and ones the shape of the output otherwise.
CALLS = {
    "sigmoid_backward": (activations.sigmoid_forward, (X,), activations.sigmoid_backward),
    "tanh_backward": (activations.tanh_forward, (X,), activations.tanh_backward),
    "relu_backward": (activations.relu_forward, (X,), activations.relu_backward),
    "linear_backward": (linear.linear_forward, (X, RNG.standard_normal((4, 2)), np.zeros(2)), linear.linear_backward),
    "half_squared_error_backward": (losses.half_squared_error_forward, (X, T01), losses.half_squared_error_backward),
    "binary_cross_entropy_backward": (losses.binary_cross_entropy_forward, (P, T01), losses.binary_cross_entropy_backward),
    "binary_cross_entropy_with_logits_backward": (losses.binary_cross_entropy_with_logits_forward, (X, T01),
                                                  losses.binary_cross_entropy_with_logits_backward),
    "softmax_backward": (losses.softmax_forward, (X,), losses.softmax_backward),
    "log_softmax_backward": (losses.log_softmax_forward, (X,), losses.log_softmax_backward),
    "softmax_cross_entropy_backward": (losses.softmax_cross_entropy_forward, (X, Y), losses.softmax_cross_entropy_backward),
    "conv2d_naive_backward": (conv.conv2d_naive_forward, (IMG, KER, KB), conv.conv2d_naive_backward),
    "conv2d_backward": (conv.conv2d_forward, (IMG, KER, KB), conv.conv2d_backward),
    "maxpool_backward": (conv.maxpool_forward, (IMG,), conv.maxpool_backward),
    "avgpool_backward": (conv.avgpool_forward, (IMG,), conv.avgpool_backward),
    "batchnorm_backward": (norm.batchnorm_forward, (X, *G4), norm.batchnorm_backward),
    "batchnorm_backward_steps": (norm.batchnorm_forward, (X, *G4), norm.batchnorm_backward_steps),
    "layernorm_backward": (norm.layernorm_forward, (X, *G4[:2]), norm.layernorm_backward),
    "spatial_batchnorm_backward": (norm.spatial_batchnorm_forward, (IMG, *G2), norm.spatial_batchnorm_backward),
    "rnn_step_backward": (rnn.rnn_step_forward, (SEQ[:, 0], H0, *RNN_W), rnn.rnn_step_backward),
    "rnn_backward": (rnn.rnn_forward, (SEQ, H0, *RNN_W), rnn.rnn_backward),
    "rnn_truncated_backward": (rnn.rnn_forward, (SEQ, H0, *RNN_W), lambda d, c: rnn.rnn_truncated_backward(d, c, 1)),
    "rnn_random_truncated_backward": (rnn.rnn_forward, (SEQ, H0, *RNN_W),
                                      lambda d, c: rnn.rnn_random_truncated_backward(d, c, 0.5, np.random.default_rng(0))),
    "lstm_step_backward": (rnn.lstm_step_forward, (SEQ[:, 0], H0, H0, *LSTM_W), lambda d, c: rnn.lstm_step_backward(d, d, c)),
    "lstm_backward": (rnn.lstm_forward, (SEQ, H0, *LSTM_W), rnn.lstm_backward),
    "dropout_backward": (lambda x: autodiff.dropout_forward(x, 0.5, np.random.default_rng(0)), (X,), autodiff.dropout_backward),
    "l2_penalty_backward": (lambda W: autodiff.l2_penalty_forward(W, 0.1), (X,), autodiff.l2_penalty_backward),
    "add_backward": (autodiff.add_forward, (X, T01), autodiff.add_backward),
}


def _run(name):
    """(upstream, cache) of one forward call: the output comes first, the cache last."""
    forward, args, _ = CALLS[name]
    result = forward(*args)
    out, cache = result[0], result[-1]
    return (1.0 if np.ndim(out) == 0 else np.ones(np.shape(out))), cache


CACHES = {}  # cache type name -> a cache of that type, one per forward
for _name in CALLS:
    _cache = _run(_name)[1]
    CACHES.setdefault(type(_cache).__name__, _cache)


def test_every_backward_is_covered():
    assert set(_backwards()) == set(CALLS), "add the new backward to CALLS (or remove a stale entry)"


def test_every_cache_type_is_made():
    assert set(_cache_types()) == set(CACHES)
    for cache_type in _cache_types().values():
        assert cache_type.made_by in {f.__name__ for f in vars(inspect.getmodule(cache_type)).values() if inspect.isfunction(f)}


@pytest.mark.parametrize("name", sorted(CALLS))
def test_backward_works_with_its_own_cache(name):
    dout, cache = _run(name)
    grads = CALLS[name][2](dout, cache)
    grads = grads if isinstance(grads, tuple) else (grads,)
    first_arg = CALLS[name][1][0]
    assert np.shape(grads[0]) == np.shape(first_arg)
    assert all(np.all(np.isfinite(g)) for g in grads)


@pytest.mark.parametrize("name", sorted(CALLS))
def test_backward_refuses_every_other_cache_by_name(name):
    dout, own = _run(name)
    expected = type(own).made_by
    foreign = [c for c in CACHES.values() if type(c) is not type(own)]
    assert len(foreign) == len(CACHES) - 1
    for cache in foreign:
        with pytest.raises(TypeError) as info:
            CALLS[name][2](dout, cache)
        message = str(info.value)
        assert message.startswith(f"{name}: argument 'cache' must be the {type(own).__name__} that {expected} returns"), message
        assert message.endswith(f"got a {type(cache).__name__} from {type(cache).made_by}"), message


@pytest.mark.parametrize("name", sorted(CALLS))
def test_backward_refuses_a_plain_tuple_with_the_same_entries(name):
    dout, own = _run(name)
    with pytest.raises(TypeError, match=f"^{name}: argument 'cache' must be the {type(own).__name__} .* got a tuple$"):
        CALLS[name][2](dout, tuple(own))
