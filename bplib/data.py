"""Small data sets made on the spot from a seeded generator (chapter 1 on), and the bundled digits.

Nothing here is downloaded: every set is generated from an explicit
``rng = np.random.default_rng(seed)``, so the same seed gives the same data.
The digits ship inside scikit-learn, which only the digits loaders import.
"""

from typing import NamedTuple

import numpy as np

from bplib._validate import as_float_array, check_int, check_real, check_rng


def two_blobs(n, rng, *, separation=2.0, spread=1.0):
    """Two Gaussian clouds in the plane, labelled 0 and 1, for logistic regression.

    Class 1 is centred at (+separation/2, +separation/2) and class 0 at minus
    that; each point adds a standard normal scaled by ``spread``.
    Parameters: n, the number of points N (half of each class, rounded down for
    class 0); rng, a numpy Generator; separation, spread, positive floats.
    Returns: x (N, 2) float64 and y (N,) int64 in {0, 1}, shuffled.
    Used in chapter 1.
    """
    n = check_int("two_blobs", "n", n, minimum=2)
    rng = check_rng("two_blobs", "rng", rng)
    separation = check_real("two_blobs", "separation", separation, low=0)
    spread = check_real("two_blobs", "spread", spread, low=0, low_open=True)
    y = np.zeros(n, dtype=np.int64)
    y[n // 2:] = 1
    centre = np.where(y[:, None] == 1, 1.0, -1.0) * (separation / 2.0)  # (N, 1)
    x = centre + spread * rng.standard_normal((n, 2))  # (N, 2)
    order = rng.permutation(n)
    return x[order], y[order]


def spirals(n, rng, *, classes=3, noise=0.2):
    """Interleaved spiral arms in the plane, one arm per class (a problem no linear model solves).

    A point of arm k sits at radius r, uniform in [0, 1], and angle 2 pi (r + k / classes)
    (one turn from the centre to the rim) plus Gaussian noise of standard deviation
    ``noise`` on the angle.
    Parameters: n, the number of points N (spread over the arms as evenly as
    possible); rng, a numpy Generator; classes, the number of arms K >= 2;
    noise >= 0. Returns: x (N, 2) float64 and y (N,) int64 in [0, K), shuffled.
    Used in chapter 5.
    """
    n = check_int("spirals", "n", n, minimum=2)
    rng = check_rng("spirals", "rng", rng)
    classes = check_int("spirals", "classes", classes, minimum=2)
    noise = check_real("spirals", "noise", noise, low=0)
    y = np.arange(n, dtype=np.int64) % classes
    r = rng.random(n)  # (N,)
    theta = 2.0 * np.pi * (r + y / classes) + noise * rng.standard_normal(n)
    x = np.stack([r * np.cos(theta), r * np.sin(theta)], axis=1)  # (N, 2)
    order = rng.permutation(n)
    return x[order], y[order]


def moons(n, rng, *, noise=0.1):
    """Two interleaving half circles, labelled 0 (upper) and 1 (lower, shifted).

    Class 0 lies on (cos t, sin t) and class 1 on (1 - cos t, 1/2 - sin t), t
    uniform in [0, pi], each point plus Gaussian noise of standard deviation
    ``noise``. Parameters: n, the number of points N (half of each class,
    rounded down for class 0); rng, a numpy Generator; noise >= 0.
    Returns: x (N, 2) float64 and y (N,) int64 in {0, 1}, shuffled. Used in chapter 5.
    """
    n = check_int("moons", "n", n, minimum=2)
    rng = check_rng("moons", "rng", rng)
    noise = check_real("moons", "noise", noise, low=0)
    y = np.zeros(n, dtype=np.int64)
    y[n // 2:] = 1
    t = np.pi * rng.random(n)  # (N,)
    upper = np.stack([np.cos(t), np.sin(t)], axis=1)  # (N, 2)
    lower = np.stack([1.0 - np.cos(t), 0.5 - np.sin(t)], axis=1)
    x = np.where(y[:, None] == 0, upper, lower) + noise * rng.standard_normal((n, 2))
    order = rng.permutation(n)
    return x[order], y[order]


def adding_problem(n, T, rng):
    """The adding problem: a sequence of (value, marker) pairs; the target is the sum of the two marked values.

    Each input x[i] is T steps of two features: a value uniform in [0, 1] and a
    marker that is 1 at exactly two steps, one in the first half and one in the
    second half, and 0 elsewhere. The target y[i] is the sum of the two marked
    values, so a model must carry information across up to T steps.
    Parameters: n, the number of sequences N; T >= 2, the length; rng, a numpy
    Generator. Returns: x (N, T, 2) and y (N,), float64. Used in chapter 8.
    """
    n = check_int("adding_problem", "n", n, minimum=1)
    T = check_int("adding_problem", "T", T, minimum=2)
    rng = check_rng("adding_problem", "rng", rng)
    values = rng.random((n, T))  # (N, T)
    first = rng.integers(0, T // 2, size=n)  # a step in [0, T/2)
    second = rng.integers(T // 2, T, size=n)  # a step in [T/2, T)
    markers = np.zeros((n, T))
    rows = np.arange(n)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    y = values[rows, first] + values[rows, second]  # (N,)
    return np.stack([values, markers], axis=2), y


class DigitsSplits(NamedTuple):
    """The digits in three disjoint parts: train on the first, choose on the second, report the third once."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def load_digits_splits(rng, *, val_fraction=0.2, test_fraction=0.2):
    """scikit-learn's bundled 8 x 8 digits split three ways (train, validation, test), scaled to [0, 1].

    Every choice (epochs, learning rate, schedule) is made on the validation
    part; the test part is evaluated once, at the end. The split is a random
    permutation drawn from ``rng``, so the same seed gives the same split.
    Parameters: rng, a numpy Generator or an integer seed; val_fraction and
    test_fraction in (0, 1), with a sum below 1. Returns: a DigitsSplits of
    x_train (N, 64), y_train (N,), x_val (Nv, 64), y_val (Nv,), x_test (Nt, 64),
    y_test (Nt,), x float64 and y int64 in [0, 10). Needs scikit-learn. Used from chapter 5 on.
    """
    fn = "load_digits_splits"
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        rng = np.random.default_rng(check_int(fn, "rng", rng, minimum=0))
    rng = check_rng(fn, "rng", rng)
    val_fraction = check_real(fn, "val_fraction", val_fraction, low=0, high=1, low_open=True, high_open=True)
    test_fraction = check_real(fn, "test_fraction", test_fraction, low=0, high=1, low_open=True, high_open=True)
    from sklearn.datasets import load_digits  # imported here: only the digits loaders need scikit-learn

    digits = load_digits()
    x = digits.data.astype(np.float64) / 16.0  # (1797, 64) in [0, 1]
    y = digits.target.astype(np.int64)
    n_val, n_test = int(round(val_fraction * len(y))), int(round(test_fraction * len(y)))
    if n_val < 1 or n_test < 1 or n_val + n_test >= len(y):
        raise ValueError(
            f"{fn}: arguments 'val_fraction' = {val_fraction} and 'test_fraction' = {test_fraction} "
            f"leave an empty train, validation or test set"
        )
    order = rng.permutation(len(y))
    test, val, train = order[:n_test], order[n_test : n_test + n_val], order[n_test + n_val :]
    return DigitsSplits(x[train], y[train], x[val], y[val], x[test], y[test])


def translated_digits(images, rng, *, size=16):
    """Each image pasted at a random offset on a blank size x size canvas.

    A task where a pattern may appear anywhere: the position carries no
    information about the class, which is what convolution's weight sharing
    assumes (chapter 7). Parameters: images (N, h, w) or (N, 1, h, w), finite float32
    or float64 (integers become float64), with h, w <= size; rng, a numpy Generator;
    size, the canvas side. Returns: the canvases, (N, size, size) or (N, 1, size, size)
    as given, of the images' dtype, and the offsets (N, 2) int64 (row, column) of each
    image's top-left corner.
    """
    fn = "translated_digits"
    rng = check_rng(fn, "rng", rng)
    size = check_int(fn, "size", size, minimum=1)
    images = as_float_array(fn, "images", images)
    channel = images.ndim == 4
    if not (images.ndim == 3 or (channel and images.shape[1] == 1)):
        raise ValueError(f"{fn}: argument 'images' must have shape (N, h, w) or (N, 1, h, w), got {images.shape}")
    flat = images[:, 0] if channel else images  # (N, h, w)
    n, h, w = flat.shape
    if h > size or w > size:
        raise ValueError(f"{fn}: argument 'images' has shape {images.shape}, larger than the canvas size {size}")
    offsets = np.stack([rng.integers(0, size - h + 1, n), rng.integers(0, size - w + 1, n)], axis=1)
    out = np.zeros((n, size, size), dtype=images.dtype)
    for k, (r, c) in enumerate(offsets):
        out[k, r : r + h, c : c + w] = flat[k]
    return (out[:, None] if channel else out), offsets.astype(np.int64)
