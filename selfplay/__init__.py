"""Self-play training: configuration, actors, replay, learners and the training loop.

Public names are re-exported lazily (PEP 562). Layer: the top but for the
CLI (tabula/), above engine/ and arena/ (tests/test_layers.py). Benchmarks
(bench*) are run as `tabula bench ...` and not exported.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    # config.py
    "TrainConfig": "selfplay.config",
    "ConfigError": "selfplay.config",
    "preset": "selfplay.config",
    "merge": "selfplay.config",
    "parse_overrides": "selfplay.config",
    # loop.py, run.py
    "train": "selfplay.loop",
    "prepare_run": "selfplay.loop",
    "Summary": "selfplay.loop",
    "RunError": "selfplay.run",
    # actors, replay, learners
    "Actor": "selfplay.actor",
    "MuZeroActor": "selfplay.muzero_actor",
    "GameRecord": "selfplay.records",
    "ReplayBuffer": "selfplay.replay",
    "SegmentReplay": "selfplay.muzero_replay",
    "Learner": "selfplay.learner",
    "MuZeroLearner": "selfplay.muzero_learner",
    # evaluation.py, plots.py
    "TrainingArena": "selfplay.evaluation",
    "plot_metrics": "selfplay.plots",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'selfplay' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
