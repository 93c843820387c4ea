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
    parser.add_argument("--repeat", type=int, default=7, help="timed runs per call; the fastest is kept")
    parser.add_argument("--out", default=str(HERE / "results.md"))
    parser.add_argument("--torch-only", action="store_true", help=argparse.SUPPRESS)  # the child process
    args = parser.parse_args()
    args.min_seconds = 0.01 if args.quick else 0.05
    args.repeat = 2 if args.quick else args.repeat
    return args


def torch_child(args):
    """Time every PyTorch reference and print them as JSON: [version, [[topic, k, forward, backward], ...]]."""
    import torch_ref

    rows = []
    for topic, module in discover(args.only):
        for k, case in enumerate(module.cases(np.random.default_rng(0))):
            if case.torch is not None:
                rows.append([topic, k] + [best_time(call, args.repeat, args.min_seconds) for call in case.torch])
    print(json.dumps([torch_ref.version(), rows]))


def blas_threads():
    """The number of threads numpy's BLAS uses (PyTorch gets as many)."""
    from threadpoolctl import threadpool_info

    return max([p["num_threads"] for p in threadpool_info() if p.get("user_api") == "blas"], default=1)


def torch_times(args):
    """(version, {(topic, k): (forward, backward)}) from a child process; (None, {}) without PyTorch."""
    if importlib.util.find_spec("torch") is None:
        return None, {}
    cmd = [sys.executable, __file__, "--torch-only", "--repeat", str(args.repeat)] + (["--quick"] if args.quick else [])
    cmd += ["--only", *args.only] if args.only else []
    # The child's numpy only builds the cases: one BLAS thread there, and PyTorch gets the parent's thread count.
    env = os.environ | {"OPENBLAS_NUM_THREADS": "1", "BPLIB_BENCH_THREADS": str(blas_threads())}
    result = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
    version, rows = json.loads(result.stdout.strip().splitlines()[-1])
    return version, {(topic, k): (f, b) for topic, k, f, b in rows}


def main():
    args = parse_args()
    if args.torch_only:
        return torch_child(args)
    version, reference = torch_times(args)
    os.environ["BPLIB_BENCH_TORCH"] = "off"  # this process never loads PyTorch
    rows, torch_rows = [], []
    for topic, module in discover(args.only):
        for k, case in enumerate(module.cases(np.random.default_rng(0))):
            f = best_time(case.forward, args.repeat, args.min_seconds)
            b = best_time(case.backward, args.repeat, args.min_seconds)
            ref = reference.get((topic, k))
            vs = f"{(f + b) / sum(ref):.2f}" if ref else "-"
            rows.append((case.op, case.size, fmt_time(f), fmt_time(b), f"{b / f:.2f}", vs))
            if ref:
                torch_rows.append((case.op, case.size, fmt_time(ref[0]), fmt_time(ref[1]), f"{ref[1] / ref[0]:.2f}"))
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
        + f"Times are the best of {args.repeat} runs; ratio is backward / forward; "
        "bplib / PyTorch is bplib's forward + backward time over PyTorch's (autograd on the CPU, float64, "
        "the same thread count, the same arrays).",
        "",
        "| op | size | forward | backward | ratio | bplib / PyTorch |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    if torch_rows:
        lines += ["", "The PyTorch references themselves:", ""]
        lines += ["| op | size | forward | backward | ratio |", "| --- | --- | ---: | ---: | ---: |"]
        lines += ["| " + " | ".join(r) + " |" for r in torch_rows]
    if others:
        lines += ["", "Other timings, measured once each:", ""]
        lines += ["| what | setting | time | note |", "| --- | --- | ---: | --- |"]
        lines += ["| " + " | ".join(r) + " |" for r in others]
    pathlib.Path(args.out).write_text("\n".join(lines) + "\n")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
