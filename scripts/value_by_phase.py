"""Where a run's value head stalls: its loss by game phase, against a turn-only predictor.

Reads the newest replay shards of a run, evaluates checkpoints of the run on
their positions and prints, per bucket of plies, the mean squared error of
the value (P(win) - P(loss) for a WDL head) against the game's result z, next
to the error of the best predictor that knows only whose turn it is (the mean
z of each side to move, fitted on the same positions: what a network that has
learned nothing about the board can reach). With auxiliary heads it also
prints the share of points whose final owner the ownership head gets right.

    python scripts/value_by_phase.py runs/go9 --shards 10 --bucket 20

Writes nothing; the positions are the run's own (recent self-play), so this
is a diagnosis of where the learning stalls, not a measure of strength.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from engine.loading import load_network  # noqa: E402
from engine.networks import scalar_value  # noqa: E402
from games import get_game  # noqa: E402
from selfplay import config as cfg  # noqa: E402
from selfplay.records import read_shard  # noqa: E402
from selfplay.replay import shard_paths  # noqa: E402


def positions(run: Path, shards: int):
    """(obs float32[N, ...], z float32[N], ply int[N], mover int[N], ownership float32[N, P]
    or None) of the games in the `shards` newest shards (finished games only)."""
    config = cfg.from_dict(cfg.load_toml(run / "config.toml"))
    game = get_game(config.game)
    info = game.info
    records = [r for path in shard_paths(run / "replay")[-shards:]
               for r in read_shard(path, config.game, info.observation_shape, info.num_actions)]
    records = [r for r in records if len(r)]
    obs = np.concatenate([r.observations for r in records])
    z = np.concatenate([r.value_targets(0.0) for r in records])
    ply = np.concatenate([np.arange(len(r)) for r in records])
    mover = np.concatenate([r.to_play for r in records]).astype(int)
    own = None
    if all(r.ownership is not None for r in records):
        own = np.concatenate([r.ownership_targets() for r in records])
    return obs, z, ply, mover, own


def evaluate(path: Path, obs: np.ndarray, batch: int = 1024):
    """(value float32[N], ownership logits float32[N, P] or None) of a checkpoint's network."""
    net, _ = load_network(path)
    values, owns = [], []
    with torch.inference_mode():
        for i in range(0, len(obs), batch):
            x = torch.from_numpy(obs[i:i + batch])
            if net.config.aux_heads:
                _, value, own, _ = net.forward_aux(x)
                owns.append(own.numpy())
            else:
                _, value = net(x)
            values.append(scalar_value(value, net.config.value_head).numpy())
    return np.concatenate(values), (np.concatenate(owns) if owns else None)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--checkpoints", nargs="*", type=Path,
                        help="checkpoints to evaluate (default: the run's first and last)")
    parser.add_argument("--shards", type=int, default=10, help="newest shards to read")
    parser.add_argument("--bucket", type=int, default=20, help="plies per row")
    args = parser.parse_args(argv)
    obs, z, ply, mover, own = positions(args.run, args.shards)
    paths = args.checkpoints or [sorted((args.run / "checkpoints").glob("step-*"))[i]
                                 for i in (0, -1)]
    turn_only = np.zeros_like(z)
    for side in (0, 1):
        turn_only[mover == side] = z[mover == side].mean()
    results = [(p.stem, *evaluate(p, obs)) for p in paths]
    print(f"{len(z)} positions from the {args.shards} newest shards of {args.run}")
    header = f"{'plies':>9} {'positions':>9} {'turn-only':>9}" + "".join(
        f" {name:>14}" for name, _, _ in results)
    if own is not None:
        header += "".join(f" {'owner ' + name[-6:]:>14}" for name, _, o in results
                          if o is not None)
    print(header)
    edges = list(range(0, int(ply.max()) + args.bucket, args.bucket))
    for lo in edges[:-1]:
        rows = (ply >= lo) & (ply < lo + args.bucket)
        if not rows.any():
            continue
        line = f"{lo:>4}-{lo + args.bucket - 1:<4} {rows.sum():>9} " \
               f"{np.mean((turn_only[rows] - z[rows]) ** 2):>9.3f}"
        line += "".join(f" {np.mean((v[rows] - z[rows]) ** 2):>14.3f}" for _, v, _ in results)
        if own is not None:
            for _, _, o in results:
                if o is not None:
                    decided = own[rows] != 0
                    right = (np.sign(o[rows]) == own[rows]) & decided
                    line += f" {right.sum() / max(decided.sum(), 1):>14.3f}"
        print(line)
    total = f"{'all':>9} {len(z):>9} {np.mean((turn_only - z) ** 2):>9.3f}"
    total += "".join(f" {np.mean((v - z) ** 2):>14.3f}" for _, v, _ in results)
    print(total)
    return 0


if __name__ == "__main__":
    sys.exit(main())
