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


OUTSIDE_DOCS = ("DESIGN" + ".md", "STYLE" + ".md", "SOURCES" + ".md", "../" + "shared/")  # the team's notes, not shipped


def outside_references(root):
    """(path, line number, name) for every mention, in the repository's text files, of a document outside it."""
    found = []
    for path in sorted(root.rglob("*")):
        parts = path.relative_to(root).parts
        if not path.is_file() or parts[0].startswith(".") or parts[0] in ("_build", "node_modules", "practice"):
            continue
        if path.suffix not in (".py", ".md", ".ipynb", ".cfg", ".toml", ".yml", ".txt", ".css", ".sty") and path.name != "Makefile":
            continue
        for k, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            found += [(str(path.relative_to(root)), k, name) for name in OUTSIDE_DOCS if name in line]
    return found


def test_no_reference_to_documents_outside_the_repository():
    """A newcomer has only the repository: code, tests and pages point to CONTRIBUTING.md, never to the team's notes."""
    assert outside_references(PACKAGE.parent) == []


def test_rule_outside_references(tmp_path):
    (tmp_path / "bplib").mkdir()
    (tmp_path / "bplib" / "m.py").write_text("# see " + "DESIGN" + ".md section 3\nx = 1\n")
    (tmp_path / "README.md").write_text("See CONTRIBUTING.md.\n")
    assert outside_references(tmp_path) == [("bplib/m.py", 1, "DESIGN" + ".md")]
