"""Time every op's forward and backward pass and print the backward/forward ratios.

Usage: ``python benchmarks/run.py [--quick] [--only TOPIC ...]``. Writes the
table to ``benchmarks/results.md`` as well, for the appendix "How fast is it?".
The cheap-gradient principle says the ratio should be a small constant.
"""

import argparse
import datetime
import importlib
import os
import pathlib
import platform
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


def torch_note():
    try:
        import torch
    except ImportError:
        return "; PyTorch not installed, so no [torch] rows"
    return f", PyTorch {torch.__version__} on {torch.get_num_threads()} threads"


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repeats, for a smoke test")
    parser.add_argument("--only", nargs="*", default=[], help="topics to run, e.g. activations conv")
    parser.add_argument("--out", default=str(HERE / "results.md"))
    args = parser.parse_args()
    repeat, min_seconds = (2, 0.01) if args.quick else (7, 0.05)
    rng = np.random.default_rng(0)
    rows = []
    for topic, module in discover(args.only):
        for case in module.cases(rng):
            f = best_time(case.forward, repeat, min_seconds)
            b = best_time(case.backward, repeat, min_seconds)
            rows.append((case.op, case.size, fmt_time(f), fmt_time(b), f"{b / f:.2f}"))
            print(f"{topic:12s} {case.op:28s} {case.size:28s} forward {fmt_time(f):>9s}  backward {fmt_time(b):>9s}  ratio {b / f:5.2f}")
    others = []
    for topic, module in discover(args.only):
        for name, size, seconds, note in getattr(module, "extras", lambda rng: [])(rng):
            others.append((name, size, fmt_time(seconds), note))
            print(f"{topic:12s} {name:40s} {size:36s} {fmt_time(seconds):>9s}  {note}")
    threads = os.environ.get("OMP_NUM_THREADS", "default")
    lines = [
        f"Measured on {datetime.date.today().isoformat()}, on {platform.machine()} "
        f"with Python {platform.python_version()}, numpy {np.__version__}, "
        f"{os.cpu_count()} cores, OMP_NUM_THREADS={threads}{torch_note()}. "
        f"Times are the best of {repeat} runs; ratio is backward / forward.",
        "",
        "| op | size | forward | backward | ratio |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    if others:
        lines += ["", "Other timings, measured once each:", ""]
        lines += ["| what | setting | time | note |", "| --- | --- | ---: | --- |"]
        lines += ["| " + " | ".join(r) + " |" for r in others]
    pathlib.Path(args.out).write_text("\n".join(lines) + "\n")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
