"""The package import graph is a line: no import against the layers, no module cycle.

Reads every import in the source, function-level ones included (those under
`if TYPE_CHECKING:` are annotations only), with scripts/import_graph.py.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _graph_module():
    spec = importlib.util.spec_from_file_location("import_graph",
                                                  REPO / "scripts" / "import_graph.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("import_graph", module)
    spec.loader.exec_module(module)
    return module


def test_no_package_imports_a_higher_layer():
    g = _graph_module()
    assert g.LAYERS == ["games", "checkpoints", "engine", "arena", "selfplay", "tabula"]
    assert g.back_arrows(g.graph()) == []


def test_no_modules_import_each_other():
    g = _graph_module()
    assert g.cycles(g.graph()) == []


def test_the_checker_sees_function_level_imports_and_cycles(tmp_path, monkeypatch):
    # A check that can fail: a tiny tree with a late import going up and a cycle.
    g = _graph_module()
    for package, files in {
        "games": {"__init__.py": "", "a.py": "def f():\n    from engine import b\n"},
        "checkpoints": {"__init__.py": ""},
        "engine": {"__init__.py": "", "b.py": "from engine.c import x\n",
                   "c.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                           "    from games import a\nfrom . import b\nx = 1\n"},
        "arena": {"__init__.py": ""}, "selfplay": {"__init__.py": ""},
        "tabula": {"__init__.py": ""},
    }.items():
        (tmp_path / package).mkdir()
        for name, text in files.items():
            (tmp_path / package / name).write_text(text)
    monkeypatch.setattr(g, "ROOT", tmp_path)
    edges = g.graph()
    # `from engine import b` runs the package's __init__ and the module: two arrows.
    assert g.back_arrows(edges) == ["games.a:2 -> engine  (games is below engine)",
                                    "games.a:2 -> engine.b  (games is below engine)"]
    assert g.cycles(edges) == [["engine.b", "engine.c"]]
    assert "games.a" not in edges.get("engine.c", {})  # TYPE_CHECKING only


def test_no_module_imports_a_private_name_of_another():
    import ast

    g = _graph_module()
    found = []
    for package in g.LAYERS:
        for path in (REPO / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if (isinstance(node, ast.ImportFrom) and node.module
                        and node.module.split(".")[0] in g.LAYERS):
                    found += [f"{path.relative_to(REPO)}:{node.lineno}: {node.module}.{a.name}"
                              for a in node.names if a.name.startswith("_")]
    assert found == []


def test_every_package_states_its_public_names_and_each_resolves():
    import importlib

    for package in ("games", "checkpoints", "engine", "arena", "selfplay"):
        module = importlib.import_module(package)
        assert module.__doc__ and module.__all__, package
        missing = [name for name in module.__all__ if getattr(module, name, None) is None]
        assert missing == [], (package, missing)


# Checks of a file's kind: a loader refusing another family's checkpoint, the Atari
# watcher needing a MuZero one. Not branches between the algorithms.
_ALGO_CHECKS = {"engine/loading.py", "arena/protocols/watch.py"}


def test_no_algorithm_branches_outside_the_algorithm_objects():
    import re

    pattern = re.compile(r'(==|!=) "(muzero|alphazero)"|\bif [\w.]*\bmuzero\b(?![._\w])')
    found = []
    for package in _graph_module().LAYERS:
        for path in (REPO / package).rglob("*.py"):
            rel = str(path.relative_to(REPO))
            if rel == "selfplay/algorithms.py" or rel in _ALGO_CHECKS:
                continue
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if pattern.search(line):
                    found.append(f"{rel}:{number}: {line.strip()}")
    assert found == []
