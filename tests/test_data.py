"""Tests of bplib.data: generated data sets are deterministic and validated."""

import numpy as np
import pytest

from bplib import data


def test_two_blobs_shapes_labels_and_balance():
    x, y = data.two_blobs(101, np.random.default_rng(0))
    assert x.shape == (101, 2) and x.dtype == np.float64
    assert y.shape == (101,) and y.dtype == np.int64
    assert set(np.unique(y)) == {0, 1} and np.sum(y == 0) == 50


def test_two_blobs_is_deterministic_under_a_seed():
    a = data.two_blobs(20, np.random.default_rng(7))
    b = data.two_blobs(20, np.random.default_rng(7))
    c = data.two_blobs(20, np.random.default_rng(8))
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])


def test_two_blobs_centres():
    x, y = data.two_blobs(4000, np.random.default_rng(1), separation=4.0, spread=0.5)
    np.testing.assert_allclose(x[y == 1].mean(axis=0), [2.0, 2.0], atol=0.05)
    np.testing.assert_allclose(x[y == 0].mean(axis=0), [-2.0, -2.0], atol=0.05)


def test_two_blobs_validates_arguments():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="'n' must be at least 2"):
        data.two_blobs(1, rng)
    with pytest.raises(TypeError, match="'n' must be an integer"):
        data.two_blobs(10.0, rng)
    with pytest.raises(TypeError, match="'rng' must be a numpy Generator"):
        data.two_blobs(10, 0)
    with pytest.raises(ValueError, match="'spread' must lie in"):
        data.two_blobs(10, rng, spread=0.0)
    with pytest.raises(ValueError, match="'separation' must lie in"):
        data.two_blobs(10, rng, separation=-1.0)
