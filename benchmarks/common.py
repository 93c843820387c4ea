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


def best_time(fn, repeat=30, min_seconds=0.005, budget=1.0):
    """The fastest of up to ``repeat`` timings of ``fn``, each a loop long enough to
    last ``min_seconds``; returns seconds per call. The minimum is the least noisy
    estimate of what the code itself costs. Short loops and many of them give the
    minimum a chance to fall between the interruptions of a busy machine; the runs
    stop after ``budget`` seconds (but never before three), so a slow call such as
    the naive convolution is timed three times, not thirty."""
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
    times, spent = [elapsed / loops], elapsed
    while len(times) < repeat and (len(times) < 3 or spent < budget):
        start = time.perf_counter()
        for _ in range(loops):
            fn()
        elapsed = time.perf_counter() - start
        times.append(elapsed / loops)
        spent += elapsed
    return min(times)
