"""Mutation testing of dspl's core modules: how many deliberately broken copies of the code the tests catch.

    .venv/bin/python bench/mutation.py                       # every module, every mutant (hours on 2 cores)
    .venv/bin/python bench/mutation.py --sample 20 --seed 0  # 20 mutants per module, drawn at random
    .venv/bin/python bench/mutation.py --module augment --list   # show the mutants, run nothing

A hand-rolled mutator on the AST, no extra dependency. Each mutant changes one place of one source file:

- ``op``: an arithmetic operator swapped (``+``/``-``, ``*``/``/``, ``//``→``/``, ``**``→``*``, ``%``→``//``),
  a comparison flipped (``<``/``<=``, ``>``/``>=``, ``==``/``!=``, ``is``/``is not``, ``in``/``not in``),
  ``and``/``or`` swapped, a ``not`` or unary minus dropped;
- ``const``: a number tweaked (0→1, 1→0, n→n+1, x→x·1.5 for floats), ``True``/``False`` swapped;
- ``drop``: a statement (an expression call, an assignment, an augmented assignment) replaced by ``pass``;
- ``return-arg``: a ``return <expression>`` replaced by ``return <first argument>`` (the argument unchanged).

Strings, docstrings, logging calls and the arguments of ``raise`` are never mutated (messages only). For each
mutant the package is copied to a scratch folder with the one file changed, and the module's test files run
there with ``pytest -x -q`` (PYTHONPATH pointing at the copy; the working tree is never touched). A failing
test kills the mutant; a run past ``--timeout-factor`` × the unmutated run's time counts as timed out. Tests
that already fail on the unmutated code are deselected first (and listed), so a broken baseline does not
count as kills.

Not part of the test suite: it takes minutes per module even sampled. Figures go to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import ast
import datetime
import json
import os
import platform
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# module -> (source file patterns, test files that cover them; fast and specific ones first, since -x stops early)
MODULES: dict[str, tuple[list[str], list[str]]] = {
    "features": (["dspl/features/*.py"],
                 ["tests/features/test_functional.py", "tests/test_spec.py", "tests/features/test_resize.py",
                  "tests/features/test_transforms.py", "tests/workflows/test_plot.py"]),
    "augment": (["dspl/augment/*.py"],
                ["tests/augment/test_cutmix.py", "tests/augment/test_specaugment.py", "tests/augment/test_augmenter.py",
                 "tests/augment/test_sapaugment.py", "tests/augment/test_stretch.py", "tests/models/test_module.py"]),
    "predict": (["dspl/workflows/predict.py"],
                ["tests/workflows/test_predict.py", "tests/workflows/test_evaluate.py"]),
    "evaluate": (["dspl/workflows/evaluate.py"],
                 ["tests/workflows/test_evaluate.py", "tests/workflows/test_predict.py"]),
    "module": (["dspl/models/module.py"],
               ["tests/models/test_module.py"]),
    "verify": (["dspl/export/verify.py"],
               ["tests/export/test_verify.py", "tests/workflows/test_export.py::test_cli_export_onnx_only"]),
}

SKIP_CALL_OWNERS = {"log", "logger", "logging", "warnings", "console", "progress"}

BINOP_SWAPS = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult, ast.FloorDiv: ast.Div,
               ast.Pow: ast.Mult, ast.Mod: ast.FloorDiv}
CMP_SWAPS = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Eq: ast.NotEq,
             ast.NotEq: ast.Eq, ast.Is: ast.IsNot, ast.IsNot: ast.Is, ast.In: ast.NotIn, ast.NotIn: ast.In}


@dataclass
class Mutant:
    file: str
    line: int
    kind: str
    description: str
    index: int  # position of the mutated node in the file's walk order, with `variant` below
    variant: int = 0

    @property
    def name(self) -> str:
        return f"{self.file}:{self.line} {self.kind}: {self.description}"


def _protected_lines(tree: ast.AST) -> set[int]:
    """Lines of docstrings, logging/warning calls and raise statements: never mutated."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Raise):
            lines.update(range(node.lineno, (node.end_lineno or node.lineno) + 1))
        elif isinstance(node, ast.Call):
            func = node.func
            owner = func.value if isinstance(func, ast.Attribute) else None
            if isinstance(owner, ast.Name) and owner.id in SKIP_CALL_OWNERS:
                lines.update(range(node.lineno, (node.end_lineno or node.lineno) + 1))
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Module)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                lines.update(range(body[0].lineno, (body[0].end_lineno or body[0].lineno) + 1))
    return lines


def _const_variants(value) -> list:
    if isinstance(value, bool):
        return [not value]
    if isinstance(value, int):
        return [1] if value == 0 else [0, value + 1] if value == 1 else [value + 1]
    if isinstance(value, float):
        return [1.0] if value == 0.0 else [value * 1.5]
    return []


def _first_argument(function: ast.FunctionDef) -> str | None:
    names = [a.arg for a in function.args.posonlyargs + function.args.args + function.args.kwonlyargs]
    names = [n for n in names if n not in ("self", "cls")]
    return names[0] if names else None


def find_mutants(root: Path, file: str) -> list[Mutant]:
    """Every mutant of one source file (under root), in a stable order."""
    source = (root / file).read_text(encoding="utf-8")
    tree = ast.parse(source)
    protected = _protected_lines(tree)
    mutants: list[Mutant] = []
    parents: dict[ast.AST, ast.AST] = {}
    for node in ast.walk(tree):
        for child in ast.iter_child_nodes(node):
            parents[child] = node
    for index, node in enumerate(ast.walk(tree)):
        line = getattr(node, "lineno", None)
        if line is None or line in protected:
            continue
        if isinstance(node, ast.BinOp) and type(node.op) in BINOP_SWAPS:
            mutants.append(Mutant(file, line, "op", f"{type(node.op).__name__} -> "
                                  f"{BINOP_SWAPS[type(node.op)].__name__}", index))
        elif isinstance(node, ast.AugAssign) and type(node.op) in BINOP_SWAPS:
            mutants.append(Mutant(file, line, "op", f"{type(node.op).__name__}= -> "
                                  f"{BINOP_SWAPS[type(node.op)].__name__}=", index))
        elif isinstance(node, ast.Compare):
            for k, op in enumerate(node.ops):
                if type(op) in CMP_SWAPS:
                    mutants.append(Mutant(file, line, "op", f"{type(op).__name__} -> {CMP_SWAPS[type(op)].__name__}",
                                          index, k))
        elif isinstance(node, ast.BoolOp):
            mutants.append(Mutant(file, line, "op", f"{type(node.op).__name__} -> "
                                  f"{'Or' if isinstance(node.op, ast.And) else 'And'}", index))
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.Not, ast.USub)):
            mutants.append(Mutant(file, line, "op", f"drop {type(node.op).__name__}", index))
        elif isinstance(node, ast.Constant) and not isinstance(node.value, str):
            for k, value in enumerate(_const_variants(node.value)):
                mutants.append(Mutant(file, line, "const", f"{node.value!r} -> {value!r}", index, k))
        elif isinstance(node, (ast.Expr, ast.Assign, ast.AugAssign, ast.AnnAssign)) \
                and not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)) \
                and isinstance(parents.get(node), (ast.FunctionDef, ast.AsyncFunctionDef, ast.If, ast.For,
                                                   ast.With, ast.While, ast.Try)):
            text = ast.get_source_segment(source, node) or ""
            mutants.append(Mutant(file, line, "drop", text.splitlines()[0][:70], index))
        elif isinstance(node, ast.Return) and node.value is not None:
            function = parents.get(node)
            while function is not None and not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                function = parents.get(function)
            argument = _first_argument(function) if function is not None else None
            if argument and not (isinstance(node.value, ast.Name) and node.value.id == argument):
                mutants.append(Mutant(file, line, "return-arg", f"return {argument}", index))
    return mutants


def apply_mutant(source: str, mutant: Mutant) -> str:
    """The mutated source of the mutant's file (given its unmutated source)."""
    tree = ast.parse(source)
    for index, node in enumerate(ast.walk(tree)):
        if index != mutant.index:
            continue
        if mutant.kind == "op":
            if isinstance(node, (ast.BinOp, ast.AugAssign)):
                node.op = BINOP_SWAPS[type(node.op)]()
            elif isinstance(node, ast.Compare):
                node.ops[mutant.variant] = CMP_SWAPS[type(node.ops[mutant.variant])]()
            elif isinstance(node, ast.BoolOp):
                node.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
            elif isinstance(node, ast.UnaryOp):
                return _replace_node(tree, node, node.operand)
        elif mutant.kind == "const":
            node.value = _const_variants(node.value)[mutant.variant]
        elif mutant.kind == "drop":
            return _replace_node(tree, node, ast.Pass())
        elif mutant.kind == "return-arg":
            node.value = ast.Name(id=mutant.description.split()[1], ctx=ast.Load())
        return ast.unparse(ast.fix_missing_locations(tree))
    raise LookupError(f"{mutant.name}: node not found (source changed?)")


def _replace_node(tree: ast.AST, old: ast.AST, new: ast.AST) -> str:
    class Replacer(ast.NodeTransformer):
        def generic_visit(self, node):
            return new if node is old else super().generic_visit(node)

    return ast.unparse(ast.fix_missing_locations(Replacer().visit(tree)))


def scratch_copy(root: Path, ref: str) -> Path:
    """A copy of the package, tests and the files the tests read (README, configs) under root: of commit ``ref``
    (``git archive``), or of the working tree as it is when ``ref`` is 'worktree'."""
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    if ref != "worktree":
        archive = subprocess.run(["git", "archive", ref], cwd=ROOT, capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(root)], input=archive, check=True)
        return root
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache")
    for name in ("dspl", "tests", "configs", "notebooks"):
        if (ROOT / name).exists():
            shutil.copytree(ROOT / name, root / name, ignore=ignore)
    for name in ("README.md", "pyproject.toml", "CITATION.cff", "constraints.txt", "LICENSE"):
        if (ROOT / name).exists():
            shutil.copy(ROOT / name, root / name)
    return root


def run_tests(copy_root: Path, tests: list[str], deselect: list[str], timeout: float | None) -> tuple[str, float, str]:
    """('passed' | 'failed' | 'timeout', seconds, output tail) of pytest -x -q in the copy."""
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-W", "ignore", *tests]
    for test in deselect:
        command += ["--deselect", test]
    env = {**os.environ, "PYTHONPATH": str(copy_root), "PYTHONDONTWRITEBYTECODE": "1"}
    start = time.perf_counter()
    try:
        result = subprocess.run(command, cwd=copy_root, env=env, capture_output=True, text=True, timeout=timeout,
                                start_new_session=True)
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        return "timeout", time.perf_counter() - start, out[-500:]
    status = "passed" if result.returncode == 0 else "failed"
    return status, time.perf_counter() - start, (result.stdout + result.stderr)[-1500:]


def baseline(copy_root: Path, tests: list[str]) -> tuple[list[str], float]:
    """Tests failing (or erroring) on the unmutated code, deselected later, and the time of a clean run."""
    failing: list[str] = []
    for _ in range(3):
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "ignore", "-rfE", *tests]
        for test in failing:
            command += ["--deselect", test]
        env = {**os.environ, "PYTHONPATH": str(copy_root), "PYTHONDONTWRITEBYTECODE": "1"}
        result = subprocess.run(command, cwd=copy_root, env=env, capture_output=True, text=True)
        new = [f for f in re.findall(r"^(?:FAILED|ERROR) (\S+)", result.stdout, flags=re.M) if f not in failing]
        failing += new
        if result.returncode == 0 or not new:
            break
    status, seconds, tail = run_tests(copy_root, tests, failing, None)
    if status != "passed":
        raise SystemExit(f"baseline still fails after deselecting {failing}:\n{tail}")
    return failing, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--module", action="append", choices=sorted(MODULES), help="repeatable; default: all")
    parser.add_argument("--sample", type=int, default=0, help="mutants per module drawn at random (0: all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout-factor", type=float, default=3.0)
    parser.add_argument("--list", action="store_true", help="list the mutants and stop")
    parser.add_argument("--json", type=Path, help="write the per-mutant results here")
    parser.add_argument("--workdir", type=Path, default=None, help="scratch folder (default: a temporary one)")
    parser.add_argument("--ref", default="HEAD", help="commit to test (git archive), or 'worktree' (default: HEAD)")
    args = parser.parse_args()

    modules = args.module or list(MODULES)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="dspl-mutation-"))
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD" if args.ref == "worktree" else args.ref],
                            cwd=ROOT, capture_output=True, text=True).stdout.strip()
    ref = args.ref if args.ref == "worktree" else commit  # every module on the same commit, however HEAD moves
    dirty = args.ref == "worktree" and subprocess.run(["git", "status", "--porcelain", "dspl", "tests"], cwd=ROOT,
                                                      capture_output=True, text=True).stdout.strip()
    print(f"# mutation bench {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, commit {commit}"
          f"{' + uncommitted changes' if dirty else ''}, {platform.machine()} {os.cpu_count()} CPUs")
    results: dict[str, list[dict]] = {}
    summary = []
    for module in modules:
        copy_root = scratch_copy(workdir / module, ref)
        patterns, tests = MODULES[module]
        files = sorted(str(p.relative_to(copy_root)) for pattern in patterns for p in copy_root.glob(pattern)
                       if p.name != "__init__.py")
        mutants = [m for f in files for m in find_mutants(copy_root, f)]
        total = len(mutants)
        if args.sample and args.sample < total:
            mutants = sorted(random.Random(f"{args.seed}-{module}").sample(mutants, args.sample),
                             key=lambda m: (m.file, m.line))
        print(f"\n## {module}: {len(mutants)} of {total} mutants; tests {' '.join(tests)}")
        if args.list:
            for m in mutants:
                print("  ", m.name)
            continue
        deselected, seconds = baseline(copy_root, tests)
        timeout = args.timeout_factor * seconds + 30
        print(f"   baseline {seconds:.0f} s (timeout {timeout:.0f} s); deselected as failing already: "
              f"{deselected or 'none'}")
        rows = []
        for i, mutant in enumerate(mutants, 1):
            target = copy_root / mutant.file
            original = target.read_text(encoding="utf-8")
            target.write_text(apply_mutant(original, mutant), encoding="utf-8")
            try:
                status, elapsed, tail = run_tests(copy_root, tests, deselected, timeout)
            finally:
                target.write_text(original, encoding="utf-8")
            outcome = {"failed": "killed", "passed": "survived", "timeout": "timeout"}[status]
            killer = re.findall(r"^(?:FAILED|ERROR) (\S+)", tail, flags=re.M)
            rows.append({**asdict(mutant), "outcome": outcome, "seconds": round(elapsed, 1),
                         "killed_by": killer[0] if killer else None})
            print(f"   [{i}/{len(mutants)}] {outcome:8s} {elapsed:5.0f} s  {mutant.name}"
                  + (f"  <- {killer[0]}" if killer else ""), flush=True)
        results[module] = rows
        counts = {k: sum(r["outcome"] == k for r in rows) for k in ("killed", "survived", "timeout")}
        summary.append((module, len(rows), total, counts))
    if args.list:
        return
    print("\n| module | mutants (of all) | killed | survived | timed out | killed % |")
    print("| --- | --- | --- | --- | --- | --- |")
    for module, n, total, c in summary:
        share = 100.0 * (c["killed"] + c["timeout"]) / n if n else float("nan")
        print(f"| {module} | {n} ({total}) | {c['killed']} | {c['survived']} | {c['timeout']} | {share:.0f} % |")
    print("\nsurvivors:")
    for module, rows in results.items():
        for r in rows:
            if r["outcome"] == "survived":
                print(f"  {module}: {r['file']}:{r['line']} {r['kind']}: {r['description']}")
    if args.json:
        args.json.write_text(json.dumps({"commit": commit, "results": results}, indent=1))
    if args.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
