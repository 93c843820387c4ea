"""What every benchmark module shares: the Case record and the timer.

A benchmark module is a file ``benchmarks/bench_<topic>.py`` with a function
``cases(rng)`` that returns a list of ``Case``. ``run.py`` finds the modules,
times each case and prints the table. Timing lives here and never in tests.
"""

import time
from dataclasses import dataclass
from typing import Callable, Optional, Tuple


@dataclass
class Case:
    """One op at one size: ``forward()`` runs the forward pass, ``backward()`` the
    backward pass on a cache made beforehand, so each is timed alone. ``torch``,
    when PyTorch is installed, is the (forward, backward) of the same op on the
    same arrays in PyTorch (see torch_ref.py)."""

    op: str
    size: str
    forward: Callable[[], object]
    backward: Callable[[], object]
    torch: Optional[Tuple[Callable[[], object], Callable[[], object]]] = None


def best_time(fn, repeat=7, min_seconds=0.05):
    """The fastest of ``repeat`` timings of ``fn``, each a loop long enough to last
    ``min_seconds``; returns seconds per call. The minimum is the least noisy
    estimate of what the code itself costs."""
    fn()  # warm up
    loops, elapsed = 1, 0.0
    while True:
        start = time.perf_counter()
        for _ in range(loops):
            fn()
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds or loops >= 1 << 20:
            break
        loops *= 2
    times = [elapsed / loops]
    for _ in range(repeat - 1):
        start = time.perf_counter()
        for _ in range(loops):
            fn()
        times.append((time.perf_counter() - start) / loops)
    return min(times)
