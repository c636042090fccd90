"""The actor pool a run's settings name: local processes or Ray actors.

Its own module so that selfplay.parallel (local processes) and
selfplay.ray_pool (which reuses parallel's helpers) do not import each other.
"""

from __future__ import annotations

from pathlib import Path

from selfplay import config as cfg
from selfplay.parallel import LocalPool


def make_pool(run_dir: Path, config: cfg.TrainConfig, log=print):
    """The actor pool run.backend names, with run.actors actors."""
    if config.run.backend == "ray":
        from selfplay.ray_pool import RayPool  # Ray is optional: imported only when asked

        return RayPool(run_dir, config, log)
    return LocalPool(run_dir, config, log)


__all__ = ["make_pool"]
