"""The benchmark scripts still run, and their stored table holds what the book reads.

Times are never asserted here (CONTRIBUTING.md, "Speed"): this only calls every
case once, so that a change of the library's API that breaks ``benchmarks/`` is
caught by ``make test`` rather than by the next ``make bench``.
"""

import importlib
import os
import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"
MODULES = sorted(p.stem for p in BENCH.glob("bench_*.py"))
# The rows chapter 10 ({ref}`ch10-cheap`) reads from the first table of results.md.
READ_BY_CHAPTER_10 = ("linear", "relu", "tanh", "sigmoid", "softmax_cross_entropy", "conv2d (fast)",
                      "maxpool 2x2", "batchnorm (compact)", "rnn", "lstm", "mlp via tape", "mlp via nn")


@pytest.fixture(scope="module", autouse=True)
def bench_path():
    os.environ["BPLIB_BENCH_TORCH"] = "off"  # the table's PyTorch column is optional; never time it here
    sys.path.insert(0, str(BENCH))
    yield
    sys.path.remove(str(BENCH))


@pytest.mark.parametrize("name", MODULES)
def test_every_case_runs_once(name):
    module = importlib.import_module(name)
    cases = module.cases(np.random.default_rng(0))
    assert cases, f"{name} has no cases"
    for case in cases:
        if "naive" in case.op:
            continue  # built (one forward) by cases(); a backward takes seconds and is the reference of test_conv
        case.forward()
        case.backward()
        assert case.op and case.size


def first_table_ops(text):
    rows, started = [], False
    for line in text.splitlines():
        if line.startswith("| op |"):
            started = True
        elif started and not line.startswith("|"):
            break
        elif started and not line.startswith("| ---"):
            rows.append(line.strip("|").split("|")[0].strip())
    return rows


def test_the_stored_table_has_the_rows_the_book_reads():
    ops = first_table_ops((BENCH / "results.md").read_text())
    missing = [op for op in READ_BY_CHAPTER_10 if op not in ops]
    assert not missing, f"benchmarks/results.md lacks rows chapter 10 reads: {missing}"
    assert not any(op.startswith("PyTorch") for op in ops)  # PyTorch's own times are in the second table
