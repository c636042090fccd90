"""No loader can run code: no unpickling anywhere in the project, and pickles are refused.

Static: every Python source of the project's packages is parsed with `ast`
and searched for imports of pickle and its kin, torch.load without
weights_only=True, numpy.load with allow_pickle, unsafe YAML loading, and
eval/exec. Dynamic: files whose unpickling would create a marker file (a raw
pickle, a torch.save checkpoint, a NumPy object array) are given to every
loader; each is refused and the marker never appears.
"""

from __future__ import annotations

import ast
import pickle
from pathlib import Path

import pytest

from tests.reliability.test_hostile_files import LOADERS, REPO, hf, workspace  # noqa: F401

PACKAGES = ("tabula", "engine", "games", "selfplay", "arena", "checkpoints")
UNSAFE_MODULES = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "marshal", "shelve",
                  "joblib", "jsonpickle"}
UNSAFE_CALLS = {"eval", "exec", "builtins.eval", "builtins.exec", "pandas.read_pickle",
                "yaml.unsafe_load", "yaml.unsafe_load_all", "yaml.full_load",
                "yaml.full_load_all", "torch.jit.load", "numpy.loads"}
SAFE_YAML_LOADERS = {"yaml.SafeLoader", "yaml.CSafeLoader", "yaml.BaseLoader"}


def _qualified(node: ast.expr, aliases: dict[str, str]) -> str | None:
    """'numpy.load' for `np.load` after `import numpy as np`; None if not a dotted name."""
    if isinstance(node, ast.Name):
        return aliases.get(node.id, node.id)
    if isinstance(node, ast.Attribute):
        base = _qualified(node.value, aliases)
        return None if base is None else f"{base}.{node.attr}"
    return None


def _aliases(tree: ast.AST) -> tuple[dict[str, str], list[str]]:
    """Local name -> module path of every import, and the imports of unsafe modules."""
    aliases, problems = {}, []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                aliases[a.asname or a.name.split(".")[0]] = a.name if a.asname else \
                    a.name.split(".")[0]
                if a.name.split(".")[0] in UNSAFE_MODULES:
                    problems.append(f"line {node.lineno}: import {a.name}")
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            for a in node.names:
                aliases[a.asname or a.name] = f"{module}.{a.name}"
            if module.split(".")[0] in UNSAFE_MODULES:
                problems.append(f"line {node.lineno}: from {module} import ...")
    return aliases, problems


def _keyword(call: ast.Call, name: str):
    return next((k.value for k in call.keywords if k.arg == name), None)


def _call_problem(call: ast.Call, name: str, aliases: dict[str, str]) -> str | None:
    if name in UNSAFE_CALLS:
        return name
    if name == "torch.load":
        flag = _keyword(call, "weights_only")
        if not (isinstance(flag, ast.Constant) and flag.value is True):
            return "torch.load without weights_only=True"
    if name == "numpy.load":
        flag = _keyword(call, "allow_pickle")
        if flag is not None and not (isinstance(flag, ast.Constant) and flag.value is False):
            return "numpy.load with allow_pickle"
    if name in ("yaml.load", "yaml.load_all"):
        loader = _keyword(call, "Loader")
        if loader is None and len(call.args) > 1:
            loader = call.args[1]
        if loader is None or _qualified(loader, aliases) not in SAFE_YAML_LOADERS:
            return f"{name} without a safe Loader"
    return None


def unsafe_uses(source: str, filename: str = "<source>") -> list[str]:
    """Every way `source` could unpickle or evaluate data, as 'line N: what'."""
    tree = ast.parse(source, filename)
    aliases, problems = _aliases(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = _qualified(node.func, aliases)
            problem = name and _call_problem(node, name, aliases)
            if problem:
                problems.append(f"line {node.lineno}: {problem}")
        elif isinstance(node, ast.Attribute) and node.attr in ("UnsafeLoader", "FullLoader",
                                                               "Unpickler"):
            problems.append(f"line {node.lineno}: {node.attr}")
    return problems


def _sources() -> list[Path]:
    return sorted(p for package in PACKAGES for p in (REPO / package).rglob("*.py"))


def test_the_project_never_unpickles_or_evaluates():
    sources = _sources()
    assert len(sources) > 50 and {p.relative_to(REPO).parts[0] for p in sources} == set(PACKAGES)
    found = {str(p.relative_to(REPO)): unsafe_uses(p.read_text(encoding="utf-8"), str(p))
             for p in sources}
    assert not {k: v for k, v in found.items() if v}


@pytest.mark.parametrize("source", [
    "import pickle", "import cPickle as p", "from pickle import loads", "import dill",
    "import marshal", "import shelve", "from joblib import load", "import _pickle",
    "import torch\ntorch.load(f)", "import torch\ntorch.load(f, weights_only=False)",
    "from torch import load\nload(f)", "import numpy as np\nnp.load(f, allow_pickle=True)",
    "import numpy\nnumpy.load(f, allow_pickle=flag)", "import yaml\nyaml.load(s)",
    "import yaml\nyaml.load(s, Loader=yaml.Loader)", "import yaml\nyaml.unsafe_load(s)",
    "import yaml\nyaml.full_load(s)", "eval('1 + 1')", "exec(code)",
    "import pandas as pd\npd.read_pickle(f)", "x = yaml.UnsafeLoader",
])
def test_the_scan_finds_each_unsafe_use(source):
    assert unsafe_uses(source), source


@pytest.mark.parametrize("source", [
    "import torch\ntorch.load(f, weights_only=True)", "import numpy as np\nnp.load(f)",
    "import numpy as np\nnp.load(f, allow_pickle=False)", "net.eval()", "model.exec()",
    "import yaml\nyaml.safe_load(s)", "import yaml\nyaml.load(s, Loader=yaml.SafeLoader)",
    "import json\njson.loads(s)", "from safetensors.torch import load\nload(data)",
])
def test_the_scan_passes_safe_uses(source):
    assert unsafe_uses(source) == [], source


def test_the_payload_is_live(tmp_path):
    """Unpickled, the corpus's payload does create the marker: its absence below means something."""
    marker = tmp_path / hf.MARKER
    payload = next(c for c in hf.pickle_cases(marker) if c.name == "pickle-protocol-2")
    pickle.loads(payload.data)  # noqa: S301 (the point of the test)
    assert marker.exists()


@pytest.mark.parametrize("key", LOADERS)
def test_every_loader_refuses_pickles_and_runs_nothing(workspace, key):
    root, loaders, _ = workspace
    loader = loaders[key]
    cases = hf.pickle_cases(root / hf.MARKER)
    results = hf.run_loader(loader, cases, root)
    assert [r.outcome for r in results] == ["refused"] * len(cases) or key.startswith(
        "config/") and all(r.outcome in ("refused", "unclear") for r in results), [
        (r.case.name, r.outcome, r.detail) for r in results]
    assert not (root / hf.MARKER).exists()

