"""Write the starter copies of the practice notebooks: every solution removed, every output cleared.

    python tools/make_practice.py [--force] [SOURCE] [DEST]

SOURCE defaults to chapters/practice and DEST to practice (ignored by git). A
practice notebook keeps each exercise's solution in cells tagged ``solution``
(the folded solution of the book); the function to fill in sits in the stub cell
before them, a signature, a docstring and ``raise NotImplementedError``. The
starter copy is the notebook without the solution cells, with the outputs and
execution counts cleared, so that every check says "not done yet" until the reader
fills a stub in. A starter that already exists is kept (it may hold the reader's
work) unless --force is given. ``make practice`` runs this script.
"""

import argparse
import ast
import copy
import json
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
SOLUTION_TAG = "solution"


def tags(cell):
    return set(cell.get("metadata", {}).get("tags", []))


def source(cell):
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def starter(nb):
    """A copy of the notebook ``nb`` (a dict as stored) without solution cells and without outputs."""
    out = copy.deepcopy(nb)
    out["cells"] = [c for c in out["cells"] if SOLUTION_TAG not in tags(c)]
    for cell in out["cells"]:
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
            cell["metadata"].pop("execution", None)  # timestamps of the stored run
    return out


def functions(text):
    """{name: (argument names, body)} of the top-level functions defined in a code cell."""
    tree = ast.parse(text)
    return {f.name: ([a.arg for a in f.args.args], f.body) for f in tree.body if isinstance(f, ast.FunctionDef)}


def is_stub(body):
    """Whether a function body is a docstring and ``raise NotImplementedError``, and nothing else."""
    doc = len(body) == 2 and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
        and isinstance(body[0].value.value, str)
    last = body[-1] if body else None
    raises = isinstance(last, ast.Raise) and getattr(last.exc, "id", getattr(getattr(last.exc, "func", None), "id", None)) \
        == "NotImplementedError"
    return doc and raises


def stub_problems(nb):
    """What is wrong with the exercises of a practice notebook: each solution must follow its stub.

    Every function a solution cell defines must have been defined earlier by a stub
    (docstring and ``raise NotImplementedError``) with the same arguments, and every
    stub must get a solution. Returns a list of problems (empty: none).
    """
    stubs, solved, problems = {}, set(), []
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "code":
            continue
        for name, (args, body) in functions(source(cell)).items():
            if SOLUTION_TAG in tags(cell):
                if name not in stubs:
                    problems.append(f"cell {i}: the solution of {name} has no stub before it")
                elif stubs[name] != args:
                    problems.append(f"cell {i}: {name}{tuple(args)} does not match its stub {name}{tuple(stubs[name])}")
                solved.add(name)
            elif is_stub(body):
                stubs[name] = args
    problems += [f"the stub {name} has no solution" for name in sorted(set(stubs) - solved)]
    return problems


def write_starters(src, dest, force=False):
    """Write the starter copy of every notebook in ``src`` into ``dest``; return (written, kept) paths."""
    dest.mkdir(parents=True, exist_ok=True)
    written, kept = [], []
    for path in sorted(src.glob("*.ipynb")):
        nb = json.loads(path.read_text(encoding="utf-8"))
        problems = stub_problems(nb)
        if problems:
            raise SystemExit(f"{path}: " + "; ".join(problems))
        target = dest / path.name
        if target.exists() and not force:
            kept.append(target)
            continue
        target.write_text(json.dumps(starter(nb), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        written.append(target)
    return written, kept


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("src", nargs="?", default=str(ROOT / "chapters" / "practice"))
    parser.add_argument("dest", nargs="?", default=str(ROOT / "practice"))
    parser.add_argument("--force", action="store_true", help="overwrite starters that exist (and your work in them)")
    args = parser.parse_args(argv)
    dest = pathlib.Path(args.dest)
    written, kept = write_starters(pathlib.Path(args.src), dest, args.force)
    shown = dest.resolve().relative_to(ROOT) if dest.resolve().is_relative_to(ROOT) else dest
    print(f"Wrote {len(written)} starter notebooks into {shown}/ (solutions removed, outputs cleared).")
    if kept:
        print(f"Kept {len(kept)} that were there already, with your work: "
              f"{', '.join(p.name for p in kept)} (make practice FORCE=1 starts them afresh).")
    print("Open them in JupyterLab:")
    print(f"  .venv/bin/jupyter lab {shown}")
    print("(make lab opens the chapters, where the practice pages keep their solutions.)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
