"""`tabula bench mcts`: tree kernel throughput with a uniform evaluator.

Measures the real search driver (engine.search.run_search) on a synthetic
game where every action is always legal and no position ends, with an
evaluator returning uniform priors and value 0, so only the tree costs.
Next to it, in the same run, a lean plain-Python PUCT with node objects
(the usual pure-Python implementation) on the same settings. Both use PUCT
with fpu_reduction 0 (all unvisited children tie at the parent's value).
With both modes, a `gumbel/puct` line gives Gumbel's simulations/s over PUCT's
for the same actions, simulations and trees, per wall-clock second (the
columns) and per CPU second (steadier when other jobs share the machine).
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

from engine.search import SearchConfig, run_search


class UniformBatch:
    """A SearchBatch of a game with `num_actions` legal actions everywhere and no end."""

    def __init__(self, num_trees: int):
        self.num_trees = num_trees

    def observe_roots(self, obs_out, mask_out):
        mask_out[:] = True

    def expand(self, leaf_tree, leaf_parent, leaf_node, leaf_action,
               obs_out, mask_out, reward_out, terminal_out):
        mask_out[:] = True
        reward_out[:] = 0.0
        terminal_out[:] = False


class _UniformEvaluator:
    def __init__(self, num_actions: int):
        self.num_actions = num_actions

    def evaluate(self, obs, mask):
        n = len(obs)
        return np.zeros((n, self.num_actions), np.float32), np.zeros(n, np.float32)


class _Node:
    __slots__ = ("prior", "visits", "value_sum", "children")

    def __init__(self, prior):
        self.prior = prior
        self.visits = 0
        self.value_sum = 0.0
        self.children = None


def python_puct(num_simulations: int, num_actions: int, pb_c_init=1.25, pb_c_base=19652.0):
    """Plain-Python PUCT search of one tree (the reference). Returns root visits."""
    root = _Node(1.0)
    uniform = 1.0 / num_actions
    root.children = [_Node(uniform) for _ in range(num_actions)]
    root.visits = 1
    for _ in range(num_simulations):
        node = root
        path = [root]
        while node.children is not None:
            n = node.visits
            sqrt_n = math.sqrt(n)
            pb_c = pb_c_init + math.log((n + pb_c_base + 1) / pb_c_base)
            parent_q = (node.value_sum / n + 1) / 2
            best, best_score = None, -math.inf
            for child in node.children:
                q = (-child.value_sum / child.visits + 1) / 2 if child.visits else parent_q
                score = q + pb_c * child.prior * sqrt_n / (1 + child.visits)
                if score > best_score:
                    best, best_score = child, score
            node = best
            path.append(node)
        node.children = [_Node(uniform) for _ in range(num_actions)]
        value = 0.0
        for n in reversed(path):
            n.visits += 1
            n.value_sum += value
            value = -value
    return [c.visits for c in root.children]


def measure_ours(num_trees, num_simulations, num_actions, root_mode="puct", repeats=3):
    """Best simulations/s of run_search over `repeats` runs (after a warm-up).

    Returns:
      (per wall-clock second, per second of this process's CPU time): on a shared
      machine the second moves less with what else runs.
    """
    config = SearchConfig(num_simulations=num_simulations, root_mode=root_mode,
                          fpu_reduction=0.0, max_num_considered_actions=16)
    evaluator = _UniformEvaluator(num_actions)
    rng = np.random.default_rng(0)
    best_wall = best_cpu = 0.0
    for i in range(repeats + 1):
        t0, c0 = time.perf_counter(), time.process_time()
        run_search(UniformBatch(num_trees), evaluator, config, num_actions, (1,), rng,
                   add_noise=root_mode == "gumbel")
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        if i:
            best_wall = max(best_wall, num_trees * num_simulations / wall)
            best_cpu = max(best_cpu, num_trees * num_simulations / max(cpu, 1e-9))
    return best_wall, best_cpu


def measure_reference(num_simulations, num_actions, seconds=1.0):
    """Simulations/s of the plain-Python PUCT, repeated for about `seconds`."""
    done, t0 = 0, time.perf_counter()
    while True:
        python_puct(num_simulations, num_actions)
        done += num_simulations
        elapsed = time.perf_counter() - t0
        if elapsed >= seconds:
            return done / elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tabula bench mcts", description=__doc__.split("\n")[0])
    parser.add_argument("--trees", type=int, nargs="+", default=[1, 64, 256])
    parser.add_argument("--sims", type=int, nargs="+", default=[50, 200, 800])
    parser.add_argument("--actions", type=int, nargs="+", default=[7, 82])
    parser.add_argument("--modes", nargs="+", default=["puct", "gumbel"],
                        choices=["puct", "gumbel"])
    parser.add_argument("--reference-seconds", type=float, default=1.0)
    args = parser.parse_args(argv)
    print(f"{'actions':>7} {'sims':>5} {'trees':>5} {'mode':>6} {'ours sims/s':>12} "
          f"{'python sims/s':>14} {'ratio':>7}")
    for a in args.actions:
        for s in args.sims:
            reference = measure_reference(s, a, args.reference_seconds)
            for b in args.trees:
                rates = {}
                for mode in args.modes:
                    ours, _ = rates[mode] = measure_ours(b, s, a, mode)
                    print(f"{a:>7} {s:>5} {b:>5} {mode:>6} {ours:>12,.0f} {reference:>14,.0f} "
                          f"{ours / reference:>6.1f}x", flush=True)
                if len(rates) == 2:
                    wall, cpu = (g / p for g, p in zip(rates["gumbel"], rates["puct"]))
                    print(f"{a:>7} {s:>5} {b:>5} gumbel/puct sims/s {wall:.2f} "
                          f"(per CPU second {cpu:.2f}: PUCT {1 / cpu:.2f}x faster)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
