"""bplib's modules import each other in one direction only (CONTRIBUTING.md section 3)."""

import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "bplib"

# For each module, the bplib modules it may import. Modules not yet written are
# listed too, so that the rule is in force the day they arrive.
ALLOWED = {
    "_validate": set(),
    "scalar": set(),
    "gradcheck": {"_validate"},
    "linear": {"_validate"},
    "activations": {"_validate"},
    "losses": {"_validate"},
    "optim": {"_validate"},
    "conv": {"_validate", "linear", "activations", "losses"},
    "rnn": {"_validate", "linear", "activations", "losses"},
    "norm": {"_validate", "linear", "activations", "losses"},
    "autodiff": {"_validate", "linear", "activations", "losses", "gradcheck"},
    "nn": {"_validate", "linear", "activations", "losses", "conv", "rnn", "norm", "autodiff"},  # autodiff: nn.Dropout's pair
    "data": {"_validate"},
    "plot": {"_validate", "scalar"},
    "train": {"_validate", "nn", "optim", "data", "losses", "linear", "activations", "gradcheck"},
    # The checkers of the practice notebooks run the op modules' pairs, Value and the tape.
    "practice": {"_validate", "activations", "linear", "losses", "conv", "rnn", "norm", "autodiff", "optim",
                 "gradcheck", "scalar"},
}
LEAVES = {"data", "plot", "train", "practice"}  # nothing in bplib imports these
NUMPY_ONLY = set(ALLOWED) - {"plot"}  # only plot may use matplotlib
# data.load_digits_splits reads the digits that ship inside scikit-learn; it imports
# sklearn inside the function, so that bplib itself needs numpy only.
OPTIONAL_THIRD_PARTY = {"data": {"sklearn"}}


def _modules():
    return sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__")


def _imports(name):
    tree = ast.parse((PACKAGE / f"{name}.py").read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "bplib":
                found |= {f"bplib.{a.name}" for a in node.names}
            else:
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
    return found


def test_every_module_has_a_rule():
    assert set(_modules()) <= set(ALLOWED), set(_modules()) - set(ALLOWED)


@pytest.mark.parametrize("name", _modules())
def test_imports_point_one_way(name):
    inner = {m.split(".")[1] for m in _imports(name) if m.startswith("bplib.")}
    assert inner <= ALLOWED[name], f"bplib.{name} imports {sorted(inner - ALLOWED[name])}, which CONTRIBUTING.md forbids"
    assert not inner & (LEAVES - ALLOWED[name]), f"bplib.{name} imports a leaf module"


@pytest.mark.parametrize("name", sorted(set(_modules()) & NUMPY_ONLY))
def test_numpy_only(name):
    third_party = {m.split(".")[0] for m in _imports(name)} - {"bplib", "numpy"}
    stdlib = {"numbers", "math", "dataclasses", "typing", "collections", "itertools", "functools", "os", "sys",
              "copy", "textwrap", "traceback", "contextlib"}
    third_party -= OPTIONAL_THIRD_PARTY.get(name, set())
    assert third_party <= stdlib, f"bplib.{name} imports {sorted(third_party - stdlib)}"
