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


GENERATORS = {
    "spirals": lambda rng: data.spirals(90, rng, classes=3, noise=0.1),
    "moons": lambda rng: data.moons(90, rng, noise=0.1),
    "adding_problem": lambda rng: data.adding_problem(10, 8, rng),
}


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_generators_are_deterministic_under_a_seed(name):
    make = GENERATORS[name]
    a, b, c = make(np.random.default_rng(3)), make(np.random.default_rng(3)), make(np.random.default_rng(4))
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    assert not np.array_equal(a[0], c[0])


def test_spirals_shapes_balance_and_radius():
    x, y = data.spirals(100, np.random.default_rng(0), classes=4, noise=0.0)
    assert x.shape == (100, 2) and x.dtype == np.float64 and y.dtype == np.int64
    assert np.bincount(y).tolist() == [25, 25, 25, 25]
    assert np.all(np.hypot(x[:, 0], x[:, 1]) <= 1.0)


def test_spirals_without_noise_lie_on_their_arm():
    # On arm k, a point at radius r has angle 2 pi (r + k / K) (mod 2 pi).
    x, y = data.spirals(60, np.random.default_rng(1), classes=3, noise=0.0)
    r = np.hypot(x[:, 0], x[:, 1])
    expected = 2.0 * np.pi * (r + y / 3)
    diff = np.angle(np.exp(1j * (np.arctan2(x[:, 1], x[:, 0]) - expected)))
    np.testing.assert_allclose(diff, 0.0, atol=1e-9)


def test_moons_without_noise_lie_on_their_half_circles():
    x, y = data.moons(200, np.random.default_rng(2), noise=0.0)
    assert np.sum(y == 0) == 100 and np.sum(y == 1) == 100
    up, low = x[y == 0], x[y == 1]
    np.testing.assert_allclose(np.hypot(up[:, 0], up[:, 1]), 1.0, atol=1e-12)
    assert np.all(up[:, 1] >= 0)
    np.testing.assert_allclose(np.hypot(low[:, 0] - 1.0, low[:, 1] - 0.5), 1.0, atol=1e-12)
    assert np.all(low[:, 1] <= 0.5)


def test_adding_problem_markers_and_targets():
    T = 9
    x, y = data.adding_problem(50, T, np.random.default_rng(5))
    assert x.shape == (50, T, 2) and y.shape == (50,)
    markers = x[:, :, 1]
    assert np.all(markers.sum(axis=1) == 2)
    assert np.all(markers[:, : T // 2].sum(axis=1) == 1)  # one marker in each half
    np.testing.assert_allclose(y, np.sum(x[:, :, 0] * markers, axis=1), rtol=1e-15)
    assert np.all((x[:, :, 0] >= 0) & (x[:, :, 0] < 1))


def test_load_digits_splits_three_disjoint_parts():
    a = data.load_digits_splits(0)
    b = data.load_digits_splits(np.random.default_rng(0))
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    # 1797 images: round(0.2 * 1797) = 359 for validation and for test, 1079 left to train on
    assert a.x_train.shape == (1079, 64) and a.x_val.shape == (359, 64) and a.x_test.shape == (359, 64)
    assert a.y_val.dtype == np.int64 and a.y_train.shape == (1079,)
    from sklearn.datasets import load_digits

    whole = np.unique(load_digits().data / 16.0, axis=0, return_counts=True)
    parts = np.unique(np.concatenate([a.x_train, a.x_val, a.x_test]), axis=0, return_counts=True)
    np.testing.assert_array_equal(parts[0], whole[0])
    np.testing.assert_array_equal(parts[1], whole[1])
    c = data.load_digits_splits(0, val_fraction=0.1, test_fraction=0.3)
    assert c.x_val.shape == (180, 64) and c.x_test.shape == (539, 64)


def test_translated_digits_places_each_image_whole_at_its_offset():
    rng = np.random.default_rng(0)
    images = rng.random((20, 8, 8))
    canvas, offsets = data.translated_digits(images, np.random.default_rng(1), size=16)
    assert canvas.shape == (20, 16, 16) and offsets.shape == (20, 2)
    assert offsets.min() >= 0 and offsets.max() <= 8 and len({tuple(o) for o in offsets}) > 1
    for k, (r, c) in enumerate(offsets):
        np.testing.assert_array_equal(canvas[k, r : r + 8, c : c + 8], images[k])
        assert canvas[k].sum() == pytest.approx(images[k].sum())  # nothing else is drawn
    with_channel, offsets2 = data.translated_digits(images[:, None], np.random.default_rng(1), size=16)
    np.testing.assert_array_equal(with_channel[:, 0], canvas)
    np.testing.assert_array_equal(offsets2, offsets)
    same, zero = data.translated_digits(images, rng, size=8)
    np.testing.assert_array_equal(same, images)
    assert not zero.any()


BAD_INPUTS = [
    (lambda r: data.spirals(1, r), ValueError, "'n' must be at least 2"),
    (lambda r: data.spirals(10.0, r), TypeError, "'n' must be an integer"),
    (lambda r: data.spirals(10, 0), TypeError, "'rng' must be a numpy Generator"),
    (lambda r: data.spirals(10, r, classes=1), ValueError, "'classes' must be at least 2"),
    (lambda r: data.spirals(10, r, noise=-0.1), ValueError, "'noise' must lie in"),
    (lambda r: data.moons(1, r), ValueError, "'n' must be at least 2"),
    (lambda r: data.moons(10, None), TypeError, "'rng' must be a numpy Generator"),
    (lambda r: data.moons(10, r, noise=-1.0), ValueError, "'noise' must lie in"),
    (lambda r: data.moons(10, r, noise=float("nan")), TypeError, "'noise' must be a finite real number"),
    (lambda r: data.adding_problem(0, 5, r), ValueError, "'n' must be at least 1"),
    (lambda r: data.adding_problem(3, 1, r), ValueError, "'T' must be at least 2"),
    (lambda r: data.adding_problem(3, 5.0, r), TypeError, "'T' must be an integer"),
    (lambda r: data.adding_problem(3, 5, 7), TypeError, "'rng' must be a numpy Generator"),
    (lambda r: data.load_digits_splits("0"), TypeError, "'rng' must be a numpy Generator"),
    (lambda r: data.load_digits_splits(r, val_fraction=0.0), ValueError, "'val_fraction' must lie in"),
    (lambda r: data.load_digits_splits(r, val_fraction=0.6, test_fraction=0.5), ValueError, "leave an empty train"),
    (lambda r: data.load_digits_splits(r, test_fraction=1e-4), ValueError, "leave an empty train, validation or test"),
    (lambda r: data.translated_digits(np.zeros((2, 8, 8)), 0), TypeError, "'rng' must be a numpy Generator"),
    (lambda r: data.translated_digits(np.full((2, 8, 8), np.nan), r), ValueError, "^translated_digits: argument 'images' contains NaN"),
    (lambda r: data.translated_digits(np.zeros((2, 8, 8), dtype=np.float16), r), TypeError,
     "^translated_digits: argument 'images' must have dtype"),
    (lambda r: data.translated_digits(np.ma.masked_array(np.zeros((2, 8, 8))), r), TypeError, "'images' is a masked array"),
    (lambda r: data.translated_digits(np.zeros((2, 8, 8), dtype=bool), r), TypeError, "'images' must have dtype"),
    (lambda r: data.spirals(2**2000, r), ValueError, r"^spirals: argument 'n' must lie within \+-\(2\*\*63 - 1\)"),
    (lambda r: data.two_blobs(10, r, spread=2**2000), ValueError, "^two_blobs: argument 'spread' is too large for a float"),
    (lambda r: data.moons(10, r, noise=np.True_), TypeError, "^moons: argument 'noise' must be a finite real number, got bool"),
    (lambda r: data.translated_digits(np.zeros((2, 64)), r), ValueError, "'images' must have shape"),
    (lambda r: data.translated_digits(np.zeros((2, 3, 8, 8)), r), ValueError, "'images' must have shape"),
    (lambda r: data.translated_digits(np.zeros((2, 8, 8)), r, size=7), ValueError, "larger than the canvas size 7"),
    (lambda r: data.translated_digits(np.zeros((2, 8, 8)), r, size=0), ValueError, "'size' must be at least 1"),
]


@pytest.mark.parametrize("call, error, match", BAD_INPUTS)
def test_generators_and_loader_validate_arguments(call, error, match):
    with pytest.raises(error, match=match):
        call(np.random.default_rng(0))


def test_translated_digits_reads_integer_images_as_float64():
    images = np.arange(2 * 3 * 3).reshape(2, 3, 3)
    canvas, offsets = data.translated_digits(images, np.random.default_rng(0), size=5)
    assert canvas.dtype == np.float64
    for k, (r, c) in enumerate(offsets):
        np.testing.assert_array_equal(canvas[k, r:r + 3, c:c + 3], images[k])
