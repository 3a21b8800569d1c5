"""The package's modules import one way: down the layers, never a private name.

Layers, lowest first (a module may import its own layer and the ones below):

    utils -> processing -> encoders -> models -> data -> inference
    -> evaluation -> training -> convert -> cli

``templates`` (package data) sits with ``utils``; ``visualization`` with
``inference``; ``demo`` (the web page of ``textsep demo``) with ``cli``.
``training``, ``evaluation`` and ``inference`` are the guide's "training /
evaluation / inference" level, ordered so that the level has no cycle:
inference knows nothing of evaluation, evaluation nothing of training.
"""

import ast
import os

import pytest

import speechbrain_textsep

pytestmark = pytest.mark.unit

PACKAGE = "speechbrain_textsep"
ROOT = os.path.dirname(speechbrain_textsep.__file__)

LAYERS = {
    "utils": 0,
    "templates": 0,
    "processing": 1,
    "encoders": 2,
    "models": 3,
    "data": 4,
    "inference": 5,
    "visualization": 5,
    "evaluation": 6,
    "training": 7,
    "convert": 8,
    "cli": 9,
    "demo": 9,
    "__init__": 0,
}


def package_modules():
    """(dotted module name, path) of every module of the package."""
    for folder, _, files in os.walk(ROOT):
        for name in sorted(files):
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                rel = os.path.relpath(path, os.path.dirname(ROOT))[:-3]
                module = rel.replace(os.sep, ".").removesuffix(".__init__")
                yield module, path


def imports_of(module, path):
    """(imported module, imported names, line) of every package import."""
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    package = module if path.endswith("__init__.py") else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith(PACKAGE):
                    yield alias.name, [], node.lineno
        elif isinstance(node, ast.ImportFrom):
            target = node.module or ""
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([target] if target else []))
            if target.startswith(PACKAGE):
                yield target, [a.name for a in node.names], node.lineno


def layer_of(module):
    """Layer number of a dotted module name of the package."""
    parts = module.split(".")
    if len(parts) == 1:
        return LAYERS["__init__"]
    top = parts[1]
    if top not in LAYERS:
        raise AssertionError(f"{module}: sub-package {top!r} has no layer")
    return LAYERS[top]


def test_every_module_has_a_layer():
    for module, _ in package_modules():
        layer_of(module)


def test_imports_go_down_the_layers():
    wrong = []
    for module, path in package_modules():
        for target, _, line in imports_of(module, path):
            if layer_of(target) > layer_of(module):
                wrong.append(f"{module}:{line} imports {target}")
    assert not wrong, "imports against the layer order:\n" + "\n".join(wrong)


def test_no_private_names_across_modules():
    wrong = []
    for module, path in package_modules():
        for target, names, line in imports_of(module, path):
            if target == module:
                continue
            private = [n for n in names if n.startswith("_")]
            hidden = [p for p in target.split(".") if p.startswith("_")]
            if private or [p for p in hidden if p != "__init__"]:
                wrong.append(f"{module}:{line} imports {private or target}")
    assert not wrong, "private names imported:\n" + "\n".join(wrong)


def test_no_import_cycles_between_subpackages():
    graph = {}
    for module, path in package_modules():
        src = module.split(".")[1] if "." in module else "__init__"
        for target, _, _ in imports_of(module, path):
            dst = target.split(".")[1] if "." in target else "__init__"
            if dst != src:
                graph.setdefault(src, set()).add(dst)

    def reaches(start, goal, seen):
        for nxt in graph.get(start, ()):
            if nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt})):
                return True
        return False

    cycles = [name for name in graph if reaches(name, name, {name})]
    assert not cycles, f"sub-packages in an import cycle: {sorted(cycles)}"


def test_the_checker_sees_a_wrong_import(tmp_path):
    """The walk itself finds an upward import and a private name."""
    path = tmp_path / "bad.py"
    path.write_text(
        "from speechbrain_textsep.training.brain import unwrap\n"
        "from speechbrain_textsep.data.synthmusic import _hidden\n"
    )
    found = list(imports_of("speechbrain_textsep.models.bad", str(path)))
    assert [t for t, _, _ in found] == [
        "speechbrain_textsep.training.brain",
        "speechbrain_textsep.data.synthmusic",
    ]
    assert layer_of(found[0][0]) > layer_of("speechbrain_textsep.models.bad")
    assert found[1][1] == ["_hidden"]
