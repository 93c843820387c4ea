"""Benchmark cases for the recurrent nets of chapter 8: the RNN and the LSTM over a whole sequence."""

import numpy as np
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
    return Case(op, f"N={N} T={T} D={D} Dh={Dh}", lambda: forward(x, h0, Wx, Wh, b), lambda: backward(dh, result[-1]))


def cases(rng):
    return [
        _sequence("rnn", rnn.rnn_forward, rnn.rnn_backward, 1, rng),
        _sequence("lstm", rnn.lstm_forward, rnn.lstm_backward, 4, rng),
    ]
