"""Benchmark cases for the recurrent nets of chapter 8: the RNN and the LSTM over a whole sequence."""

import numpy as np
import torch_ref
from common import Case

from bplib import rnn

N, T, D, Dh = 32, 50, 64, 128


def _sequence(op, forward, backward, gates, rng):
    # Weights of scale 1 / sqrt(fan-in) keep tanh and sigma away from saturation, as in training.
    x, h0 = rng.standard_normal((N, T, D)), rng.standard_normal((N, Dh))
    Wx = rng.standard_normal((D, gates * Dh)) / np.sqrt(D)
    Wh = rng.standard_normal((Dh, gates * Dh)) / np.sqrt(Dh)
    b = np.zeros(gates * Dh)
    result = forward(x, h0, Wx, Wh, b)  # (h, cache) for the RNN, (h, c_T, cache) for the LSTM
    dh = rng.standard_normal(result[0].shape)
    return Case(op, f"N={N} T={T} D={D} Dh={Dh}", lambda: forward(x, h0, Wx, Wh, b),
                lambda: backward(dh, result[-1]), _torch_reference(gates, x, h0, Wx, Wh, b))


def _torch_reference(gates, x, h0, Wx, Wh, b):
    """torch.nn.RNN or torch.nn.LSTM (gates i, f, g, o, as in bplib) with the same weights, float64, batch first."""
    torch = torch_ref.torch
    if torch is None:
        return None
    cls = torch.nn.RNN if gates == 1 else torch.nn.LSTM
    module = cls(D, Dh, batch_first=True).double()
    with torch.no_grad():  # PyTorch keeps W transposed, (gates Dh, D), and two biases whose sum is ours
        module.weight_ih_l0.copy_(torch.tensor(Wx.T))
        module.weight_hh_l0.copy_(torch.tensor(Wh.T))
        module.bias_ih_l0.copy_(torch.tensor(b))
        module.bias_hh_l0.zero_()
    if gates == 1:
        return torch_ref.module_pair(module, x, h0[None])
    c0 = np.zeros_like(h0)[None]
    return torch_ref.module_pair(lambda x, h, c: module(x, (h, c)), x, h0[None], c0, parameters=list(module.parameters()))


def cases(rng):
    return [
        _sequence("rnn", rnn.rnn_forward, rnn.rnn_backward, 1, rng),
        _sequence("lstm", rnn.lstm_forward, rnn.lstm_backward, 4, rng),
    ]
