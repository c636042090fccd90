"""The search engine: tree kernels, the search driver, networks, evaluators and players.

Public names are re-exported lazily (PEP 562): `from engine import SearchConfig`
imports engine.search only, not torch. Layer: above games/ and checkpoints/,
below arena/ and selfplay/ (tests/test_layers.py). Benchmarks (bench_*) are
run as `tabula bench ...` and not exported.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    # search.py, tree.py, gumbel.py: the search (NumPy and Numba only)
    "Evaluator": "engine.search",
    "LeafExpander": "engine.search",
    "SearchConfig": "engine.search",
    "SearchResult": "engine.search",
    "Timings": "engine.search",
    "run_search": "engine.search",
    "run_tree_search": "engine.search",
    "sample_actions": "engine.search",
    "Tree": "engine.tree",
    "new_tree": "engine.tree",
    "considered_visits_table": "engine.gumbel",
    # networks.py, muzero_net.py, loading.py
    "NetworkConfig": "engine.networks",
    "PolicyValueNet": "engine.networks",
    "MuZeroNet": "engine.muzero_net",
    "MuZeroNetConfig": "engine.muzero_net",
    "load_network": "engine.loading",
    "load_muzero_network": "engine.loading",
    # evaluator.py, backend_choice.py, eval_cache.py, inference_server.py
    "BACKENDS": "engine.evaluator",
    "UniformEvaluator": "engine.evaluator",
    "make_evaluator": "engine.evaluator",
    "choose_backend": "engine.backend_choice",
    "CachedEvaluator": "engine.eval_cache",
    "InferenceServer": "engine.inference_server",
    # muzero_search.py: MuZero's leaf expander (torch) and its run_tree_search wrapper
    "MuZeroInference": "engine.muzero_search",
    "run_muzero_search": "engine.muzero_search",
    # player.py, interactive.py
    "Player": "engine.player",
    "MuZeroPlayer": "engine.player",
    "INTERACTIVE_BATCH": "engine.interactive",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'engine' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
