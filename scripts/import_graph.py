"""Prints the project's import graph: package arrows against the layer order, and module cycles.

Every import is read from the source (function-level ones included, those
under `if TYPE_CHECKING:` left out: annotations only), relative imports resolved. The layers, bottom to top, are LAYERS; an arrow from a lower
package to a higher one goes back. Run: python scripts/import_graph.py [--modules]
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ["games", "checkpoints", "engine", "arena", "selfplay", "tabula"]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _is_type_checking(test: ast.expr) -> bool:
    return ((isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
            or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"))


def imports_of(path: Path, modules: set[str]) -> list[tuple[str, int]]:
    """(imported project module, line) for every import in `path`."""
    tree = ast.parse(path.read_text(), str(path))
    here = module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    # Imports under `if TYPE_CHECKING:` are for annotations only: no runtime arrow.
    typing_only = {id(n) for block in ast.walk(tree) if isinstance(block, ast.If)
                   and _is_type_checking(block.test)
                   for stmt in block.body for n in ast.walk(stmt)}
    found = []
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            names = [base] + [f"{base}.{a.name}" for a in node.names]
        for name in names:
            # The longest project module the name starts with.
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name and name != here:
                found.append((name, node.lineno))
    return found


def graph() -> dict[str, dict[str, int]]:
    files = [p for layer in LAYERS for p in (ROOT / layer).rglob("*.py")]
    modules = {module_name(p) for p in files}
    edges: dict[str, dict[str, int]] = defaultdict(dict)
    for p in files:
        for target, line in imports_of(p, modules):
            edges[module_name(p)].setdefault(target, line)
    return edges


def back_arrows(edges) -> list[str]:
    rank = {name: i for i, name in enumerate(LAYERS)}
    out = []
    for src, targets in sorted(edges.items()):
        for dst, line in sorted(targets.items()):
            a, b = src.split(".")[0], dst.split(".")[0]
            if rank[a] < rank[b]:
                out.append(f"{src}:{line} -> {dst}  ({a} is below {b})")
    return out


def cycles(edges) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, comps, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                comps.append(sorted(comp))

    sys.setrecursionlimit(10_000)
    for v in list(edges):
        if v not in index:
            visit(v)
    return comps


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args(argv)
    edges = graph()
    back = back_arrows(edges)
    comps = cycles(edges)
    print(f"layers, bottom to top: {' < '.join(LAYERS)}")
    print(f"{len(back)} import(s) against the layers:")
    for line in back:
        print("  " + line)
    print(f"{len(comps)} module cycle(s):")
    for comp in comps:
        print("  " + " <-> ".join(comp))
    return 1 if back or comps else 0


if __name__ == "__main__":
    raise SystemExit(main())
