"""The one-way layers of the README's "Architecture": every import of a dspl module (module level and inside
functions) points down, no import cycle exists, and nothing below `config/` reads a configuration's keys."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import dspl

PACKAGE = Path(dspl.__file__).parent

# Layers from the bottom; a module may import its own layer's package and any layer below. The first matching
# prefix names a module's layer; the packages of one layer (the braces of the README's diagram) import only
# themselves and lower layers, not each other.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("dspl.errors", "dspl.version"),
    ("dspl.quiet",),
    ("dspl.threads",),
    ("dspl.files", "dspl.latency", "dspl.tensorboard"),
    ("dspl.spec",),
    ("dspl.config",),
    ("dspl.data", "dspl.augment", "dspl.features", "dspl.explain", "dspl.report"),
    ("dspl.models",),
    ("dspl.export",),
    ("dspl.legacy",),
    ("dspl.loading",),
    ("dspl.workflows",),
    ("dspl.cli",),
    ("dspl.__main__", "dspl"),
)
KERAS_NAMES = re.compile(r"\b(KerasScorer|TFPlots|is_keras_file|has_keras_markers|load_legacy_model|keras_backbone|"
                         r"KERAS_BACKBONES|keras_model_stats)\b")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imports_of(name: str) -> set[str]:
    """The dspl modules ``name`` imports anywhere in its source (`from X import y` counts as X.y where that is a
    module)."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            found.update(f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names)
    return {target for target in found if target in MODULES and target != name}


GRAPH = {name: imports_of(name) for name in MODULES}


def layer_of(name: str) -> tuple[int, str]:
    """The layer index and the package (prefix) a module belongs to."""
    for index, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if name == prefix or name.startswith(prefix + "."):
                return index, prefix
    raise AssertionError(f"{name} is in no layer: add it to LAYERS")


def test_every_import_points_down_or_stays_in_its_package():
    upward = []
    for name, targets in GRAPH.items():
        level, package = layer_of(name)
        for target in targets:
            target_level, target_package = layer_of(target)
            if target_level > level or (target_level == level and target_package != package):
                upward.append(f"{name} -> {target}")
    assert not upward, "imports that do not point down:\n" + "\n".join(sorted(upward))


def test_there_is_no_import_cycle():
    state: dict[str, int] = {}
    cycles = []

    def visit(name: str, stack: list[str]) -> None:
        state[name] = 1
        for target in sorted(GRAPH[name]):
            if state.get(target) == 1:
                cycles.append(" -> ".join(stack[stack.index(target):] + [name, target]) if target in stack
                              else f"{name} -> {target}")
            elif target not in state:
                visit(target, [*stack, name])
        state[name] = 2

    for name in sorted(GRAPH):
        if name not in state:
            visit(name, [])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_spec_imports_nothing_of_dspl_but_errors():
    assert GRAPH["dspl.spec"] <= {"dspl.errors"}


@pytest.mark.parametrize("name", [n for n in MODULES if not n.startswith(("dspl.legacy", "dspl.cli"))
                                  and n != "dspl.loading"])
def test_only_the_loading_module_and_the_cli_know_the_keras_plugin(name):
    assert not any(target.startswith("dspl.legacy") for target in GRAPH[name]), GRAPH[name]
    assert not KERAS_NAMES.search(MODULES[name].read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", [n for n in MODULES if not n.startswith("dspl.config")
                                  and n != "dspl.models.modelfile"])
def test_no_code_below_config_reads_configuration_keys(name):
    source = MODULES[name].read_text(encoding="utf-8")
    assert not re.search(r"hp\[|hp\.get\(", source)


def test_no_public_function_takes_more_than_eight_parameters():
    wide = []
    for name, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and not node.name.startswith("_"):
                args = node.args
                names = [a.arg for a in (*args.posonlyargs, *args.args)]
                count = len(names) + len(args.kwonlyargs) - (names[:1] in (["self"], ["cls"]))
                is_click_command = name.startswith("dspl.cli.") and node.name == "command"
                if count > 8 and not is_click_command:
                    wide.append(f"{name}.{node.name}: {count}")
    assert not wide, wide
