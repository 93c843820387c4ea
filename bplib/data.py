"""Small data sets made on the spot from a seeded generator (chapter 1 on).

Nothing here is downloaded: every set is generated from an explicit
``rng = np.random.default_rng(seed)``, so the same seed gives the same data.
"""

import numpy as np

from bplib._validate import check_int, check_real, check_rng


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
