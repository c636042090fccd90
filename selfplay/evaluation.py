"""Arena work inside a training run: gauntlets for the Elo curve, and gating.

After each checkpoint the loop calls `TrainingArena.after_checkpoint`. With
`[arena] every = K`, every K-th checkpoint plays the previous gauntlet's
checkpoint and the run's first one (`games` each); the games go to the run's
arena.sqlite and elo.csv / elo.png are redrawn. With gating on, each new
checkpoint must beat the promoted one before the actors use it; the first
checkpoint is promoted without a match. Which checkpoint is promoted is
kept in arena_state.json, so a resumed run keeps it.
"""

from __future__ import annotations

import json
from pathlib import Path

STATE_FILE = "arena_state.json"


class TrainingArena:
    """The run's arena state between checkpoints."""

    def __init__(self, config, run_dir: Path, stop=lambda: False):
        self.config = config
        self.arena = config.arena
        self.run_dir = Path(run_dir)
        self.stop = stop
        self.sims = self.arena.simulations or config.search.num_simulations
        state = {}
        path = self.run_dir / STATE_FILE
        if path.exists():
            try:
                state = json.loads(path.read_text())
            except (OSError, ValueError, RecursionError):
                state = {}  # only bookkeeping: the next gauntlet starts afresh
        if not isinstance(state, dict):
            state = {}
        self.promoted: str | None = _name(state.get("promoted"))
        self.last_gauntlet: str | None = _name(state.get("last_gauntlet"))

    @property
    def gating(self) -> bool:
        return self.arena.gating != "off"

    def enabled(self) -> bool:
        return self.gating or self.arena.every > 0

    def promoted_path(self) -> Path | None:
        """The checkpoint the actors should play with (gating only), if any yet."""
        if not self.gating or self.promoted is None:
            return None
        path = self.run_dir / "checkpoints" / f"{self.promoted}.safetensors"
        return path if path.exists() else None

    def after_checkpoint(self, path: Path) -> list[str]:
        """Gates and/or plays the gauntlet for the checkpoint just written; blocks.

        Returns lines for the user.
        """
        from arena.matches.gating import gauntlet_step
        from arena.matches.match import MatchSettings
        from arena.matches.players import checkpoint_spec
        from arena.matches.results import ResultsDB
        from arena.matches.tournament import Tournament
        from checkpoints import list_checkpoints

        game = self.config.game
        new = checkpoint_spec(path, game, self.sims)
        lines: list[str] = []
        with ResultsDB(self.run_dir / "arena.sqlite") as db:
            tournament = Tournament(db, MatchSettings(game, self.config.run.seed),
                                    self.arena.processes, progress=False, stop=self.stop)
            if self.gating:
                lines.append(self._gate(tournament, new))
            all_paths = list_checkpoints(self.run_dir / "checkpoints")
            if self.arena.every and len(all_paths) % self.arena.every == 0 and not self.stop():
                previous = self._spec(self.last_gauntlet, game)
                first = checkpoint_spec(all_paths[0], game, self.sims)
                lines += gauntlet_step(tournament, self.run_dir, new, previous, first,
                                       self.arena.games)
                self.last_gauntlet = new.name
        self._save()
        return lines

    def _gate(self, tournament, new) -> str:
        from arena.matches.gating import gate

        best = self._spec(self.promoted, self.config.game)
        if best is None:
            self.promoted = new.name
            return f"gate: {new.name} promoted (the first checkpoint)"
        a = self.arena
        result = gate(tournament, new, best, a.gating, a.games, a.gate_score, a.sprt_elo0,
                      a.sprt_elo1)
        if result.promoted:
            self.promoted = new.name
        return result.line(new.name, best.name)

    def _spec(self, name: str | None, game: str):
        from arena.matches.players import checkpoint_spec

        if name is None:
            return None
        path = self.run_dir / "checkpoints" / f"{name}.safetensors"
        return checkpoint_spec(path, game, self.sims) if path.exists() else None

    def _save(self) -> None:
        from checkpoints.files import atomic_write_bytes

        state = {"promoted": self.promoted, "last_gauntlet": self.last_gauntlet}
        atomic_write_bytes(self.run_dir / STATE_FILE, json.dumps(state).encode())


def _name(value) -> str | None:
    """A checkpoint file name from the state file, or None for anything else."""
    return value if isinstance(value, str) and value and "/" not in value else None
