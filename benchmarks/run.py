"""Time every op's forward and backward pass and print the backward/forward ratios.

Usage: ``python benchmarks/run.py [--quick] [--repeat N] [--only TOPIC ...]``. Writes
the table to ``benchmarks/results.md`` as well, for the appendix "How fast is it?".
The cheap-gradient principle says the ratio should be a small constant. Where
PyTorch is installed, a last column gives bplib's forward + backward time over
PyTorch's for the same op on the same arrays (see torch_ref.py).

PyTorch's references are timed in a child process (``--torch-only``): PyTorch's
OpenMP threads and numpy's OpenBLAS threads both keep spinning for a while after
parallel work, and in one process on a 2-core machine each then slows the other
down, by up to a hundred times on the small elementwise ops. The child builds the
same cases from the same seed, so both processes time the same arrays.
"""

import argparse
import datetime
import importlib
import importlib.util
import json
import os
import pathlib
import platform
import subprocess
import sys

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from common import best_time  # noqa: E402


def discover(only):
    for path in sorted(HERE.glob("bench_*.py")):
        topic = path.stem.removeprefix("bench_")
        if not only or topic in only:
            yield topic, importlib.import_module(path.stem)


def fmt_time(seconds):
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repeats, for a smoke test")
    parser.add_argument("--only", nargs="*", default=[], help="topics to run, e.g. activations conv")
    parser.add_argument("--repeat", type=int, default=30, help="timed runs per call, at most; the fastest is kept")
    parser.add_argument("--passes", type=int, default=3, help="sweeps through all the cases; the fastest is kept")
    parser.add_argument("--out", default=str(HERE / "results.md"))
    parser.add_argument("--torch-only", action="store_true", help=argparse.SUPPRESS)  # the child process
    args = parser.parse_args()
    args.min_seconds = 0.005
    args.repeat = 3 if args.quick else args.repeat
    args.passes = 1 if args.quick else args.passes
    return args


def all_cases(only):
    """[(topic, k, case)] for every case of every topic, each topic from a generator seeded with 0."""
    return [(topic, k, case) for topic, module in discover(only)
            for k, case in enumerate(module.cases(np.random.default_rng(0)))]


def time_pairs(pairs, args):
    """{key: (forward, backward)} for {key: (forward_call, backward_call)}: the fastest over ``args.passes``
    sweeps through all the pairs, so that a burst of load on a shared machine spoils one sweep, not the table."""
    best = {}
    for _ in range(args.passes):
        for key, (forward, backward) in pairs.items():
            f, b = (best_time(call, args.repeat, args.min_seconds) for call in (forward, backward))
            f0, b0 = best.get(key, (f, b))
            best[key] = (min(f, f0), min(b, b0))
    return best


def torch_child(args):
    """Time every PyTorch reference and print them as JSON: [version, [[topic, k, forward, backward], ...]]."""
    import torch_ref

    pairs = {(topic, k): case.torch for topic, k, case in all_cases(args.only) if case.torch is not None}
    rows = [[topic, k, f, b] for (topic, k), (f, b) in time_pairs(pairs, args).items()]
    print(json.dumps([torch_ref.version(), rows]))


def blas_threads():
    """The number of threads numpy's BLAS uses (PyTorch gets as many)."""
    from threadpoolctl import threadpool_info

    return max([p["num_threads"] for p in threadpool_info() if p.get("user_api") == "blas"], default=1)


def torch_times(args):
    """(version, {(topic, k): (forward, backward)}) from a child process; (None, {}) without PyTorch."""
    if importlib.util.find_spec("torch") is None:
        return None, {}
    cmd = [sys.executable, __file__, "--torch-only", "--repeat", str(args.repeat), "--passes", str(args.passes)]
    cmd += ["--quick"] if args.quick else []
    cmd += ["--only", *args.only] if args.only else []
    # The child's numpy only builds the cases: one BLAS thread there, and PyTorch gets the parent's thread count.
    # Its OpenMP threads spin between ops (OMP_WAIT_POLICY=ACTIVE): only PyTorch runs in the child, and a
    # sleeping thread can take a scheduler tick (4 ms) to wake on a busy 2-core machine.
    env = os.environ | {"OPENBLAS_NUM_THREADS": "1", "BPLIB_BENCH_THREADS": str(blas_threads()), "OMP_WAIT_POLICY": "ACTIVE"}
    result = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
    version, rows = json.loads(result.stdout.strip().splitlines()[-1])
    return version, {(topic, k): (f, b) for topic, k, f, b in rows}


def settle_allocator():
    """Allocate and free one 16 MB array, so that the times do not depend on which cases ran before.

    glibc's malloc serves a large request (from 128 kB) with fresh pages from the kernel (mmap), and every
    first touch of such a page costs a fault. The first time it frees such a block, of at most 32 MB, it
    raises that threshold to the block's size and serves later requests below it from its heap, whose pages
    are reused. A training loop reaches that state with its first large temporary; without this call, an
    op timed early in the run pays the faults and the same op timed after a large case does not: two 2 MB
    temporaries alive at once can cost ten times the arithmetic (extras in bench_activations measure it).
    PyTorch keeps its own cache of freed blocks either way.
    """
    np.ones(16 << 20 >> 3).sum()  # 16 MB of float64, touched, then freed


def main():
    args = parse_args()
    settle_allocator()
    if args.torch_only:
        return torch_child(args)
    version, reference = torch_times(args)
    os.environ["BPLIB_BENCH_TORCH"] = "off"  # this process never loads PyTorch
    rows, torch_rows = [], []
    cases = all_cases(args.only)
    times = time_pairs({(topic, k): (case.forward, case.backward) for topic, k, case in cases}, args)
    for topic, k, case in cases:
        f, b = times[(topic, k)]
        ref = reference.get((topic, k))
        vs = f"{(f + b) / sum(ref):.2f}" if ref else "-"
        rows.append((case.op, case.size, fmt_time(f), fmt_time(b), f"{b / f:.2f}", vs))
        if ref:
            torch_rows.append((f"PyTorch {case.op}", case.size, fmt_time(ref[0]), fmt_time(ref[1]), f"{ref[1] / ref[0]:.2f}"))
        print(f"{topic:12s} {case.op:28s} {case.size:28s} forward {fmt_time(f):>9s}  backward {fmt_time(b):>9s}  "
              f"ratio {b / f:5.2f}  bplib/PyTorch {vs:>5s}")
    others = []
    for topic, module in discover(args.only):
        for name, size, seconds, note in getattr(module, "extras", lambda rng: [])(np.random.default_rng(0)):
            others.append((name, size, fmt_time(seconds), note))
            print(f"{topic:12s} {name:40s} {size:36s} {fmt_time(seconds):>9s}  {note}")
    write_table(args, version, rows, torch_rows, others)


def write_table(args, version, rows, torch_rows, others):
    threads = os.environ.get("OMP_NUM_THREADS", "default")
    lines = [
        f"Measured on {datetime.date.today().isoformat()}, on {platform.machine()} "
        f"with Python {platform.python_version()}, numpy {np.__version__}, "
        f"{os.cpu_count()} cores, OMP_NUM_THREADS={threads}, "
        + (f"{version}. " if version else "PyTorch not installed, so no PyTorch column. ")
        + "The allocator is settled first (run.settle_allocator). "
        + f"Times are the best of {args.passes} sweeps through all the cases, each call timed up to {args.repeat} "
        "times in loops of at least 5 ms (3 times for the slowest calls); "
        "ratio is backward / forward; "
        "vs PyTorch is bplib's forward + backward time over PyTorch's (autograd on the CPU, float64, "
        "the same thread count, the same arrays).",
        "",
        "| op | size | forward | backward | ratio | vs PyTorch |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    if torch_rows:
        lines += ["", "The PyTorch references themselves:", ""]
        lines += ["| PyTorch op | size | forward | backward | ratio |", "| --- | --- | ---: | ---: | ---: |"]
        lines += ["| " + " | ".join(r) + " |" for r in torch_rows]
    if others:
        lines += ["", "Other timings, measured once each:", ""]
        lines += ["| what | setting | time | note |", "| --- | --- | ---: | --- |"]
        lines += ["| " + " | ".join(r) + " |" for r in others]
    pathlib.Path(args.out).write_text("\n".join(lines) + "\n")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
