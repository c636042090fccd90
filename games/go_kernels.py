"""Numba kernels of Go (games/go.py): legality, captures, ko, scoring, observations,
and the search nodes of `GoBatch` (games/go_batch.py).

Boards are int8[N*N] (0 empty, 1 black, 2 white), row-major, row 0 = rank 1;
histories int8[8, N, N], newest first. The kernels follow open_spiel's rules
(see games/go.py) and are checked against open_spiel in tests/games/test_go.py.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def _neighbours(point: int, size: int, out: np.ndarray) -> int:
    """Writes the orthogonal neighbours of `point` to out int32[4]; returns how many."""
    row, col = point // size, point % size
    k = 0
    if row > 0:
        out[k] = point - size
        k += 1
    if row < size - 1:
        out[k] = point + size
        k += 1
    if col > 0:
        out[k] = point - 1
        k += 1
    if col < size - 1:
        out[k] = point + 1
        k += 1
    return k


@njit(cache=True, nogil=True)
def _groups(board, size, zobrist):
    """Labels the groups of int8[N*N] board.

    Returns:
      (hash uint64 of the board, label int32[N*N] group id per stone (-1 on
      empty points), and per group id: liberties int32 (distinct points),
      hash uint64, stones int32).
    """
    nn = size * size
    label = np.full(nn, -1, np.int32)
    liberties = np.zeros(nn, np.int32)
    group_hash = np.zeros(nn, np.uint64)
    group_size = np.zeros(nn, np.int32)
    stamp = np.full(nn, -1, np.int32)
    stack = np.empty(nn, np.int32)
    nbr = np.empty(4, np.int32)
    h = np.uint64(0)
    g = 0
    for p in range(nn):
        c = board[p]
        if c == 0:
            continue
        h ^= zobrist[c, p]
        if label[p] >= 0:
            continue
        label[p] = g
        stack[0] = p
        top = 1
        while top > 0:
            top -= 1
            q = stack[top]
            group_hash[g] ^= zobrist[c, q]
            group_size[g] += 1
            for i in range(_neighbours(q, size, nbr)):
                n = nbr[i]
                if board[n] == 0:
                    if stamp[n] != g:
                        stamp[n] = g
                        liberties[g] += 1
                elif board[n] == c and label[n] < 0:
                    label[n] = g
                    stack[top] = n
                    top += 1
        g += 1
    return h, label, liberties, group_hash, group_size


@njit(cache=True, nogil=True)
def legal_moves(board, size, colour, ko, zobrist):
    """bool[N*N+1]: open_spiel's legal moves for `colour` (pass always legal).

    A point is legal if empty, not the ko point, and the stone would have a
    liberty: an empty neighbour, a friendly neighbour group with another
    liberty, or an enemy neighbour group in atari (captured). Liberties are
    counted only for the groups next to an empty point without an empty
    neighbour, each group once: most points have an empty neighbour.

    Args:
      board: int8[N*N]; colour: 1 black or 2 white; ko: the ko point or -1;
      zobrist: uint64[3, N*N] (unused; the signature of the other kernels).
    """
    nn = size * size
    legal = np.zeros(nn + 1, np.bool_)
    legal[nn] = True
    nbr = np.empty(4, np.int32)
    group = np.full(nn, -1, np.int32)  # group id of each stone counted so far, else -1
    liberties = np.empty(nn, np.int32)  # of each group id
    stamp = np.full(nn, -1, np.int32)
    stack = np.empty(nn, np.int32)
    near = np.empty(4, np.int32)
    groups = 0
    for m in range(nn):
        if board[m] != 0 or m == ko:
            continue
        row = m // size
        col = m - row * size
        if ((row > 0 and board[m - size] == 0) or (row < size - 1 and board[m + size] == 0)
                or (col > 0 and board[m - 1] == 0) or (col < size - 1 and board[m + 1] == 0)):
            legal[m] = True
            continue
        ok = False
        for i in range(_neighbours(m, size, nbr)):
            if ok:
                break
            n = nbr[i]
            if group[n] < 0:
                liberties[groups] = _label_group(board, size, n, groups, group, stamp, stack,
                                                 near)
                groups += 1
            if board[n] == colour:
                ok = liberties[group[n]] > 1
            else:
                ok = liberties[group[n]] == 1
        legal[m] = ok
    return legal


@njit(cache=True, nogil=True)
def _label_group(board, size, start, g, group, stamp, stack, nbr):
    """Sets group[p] = g on the stones of start's group; returns its liberties (distinct
    empty neighbours, marked g in stamp). nbr: int32[4] scratch."""
    colour = board[start]
    group[start] = g
    stack[0] = start
    top = 1
    count = 0
    while top > 0:
        top -= 1
        q = stack[top]
        for i in range(_neighbours(q, size, nbr)):
            n = nbr[i]
            if board[n] == 0:
                if stamp[n] != g:
                    stamp[n] = g
                    count += 1
            elif board[n] == colour and group[n] < 0:
                group[n] = g
                stack[top] = n
                top += 1
    return count


@njit(cache=True, nogil=True)
def ko_point(before, after, move, size):
    """open_spiel's ko point after `move`, or -1.

    The move must have been played into an enemy eye (every neighbour an
    enemy stone before) and captured exactly one stone; the ko point is that
    stone's point.

    Args:
      before, after: int8[N*N] boards around the move.
    """
    colour = after[move]
    nbr = np.empty(4, np.int32)
    for i in range(_neighbours(move, size, nbr)):
        if before[nbr[i]] != 3 - colour:
            return -1
    point = -1
    for p in range(size * size):
        if before[p] != 0 and after[p] == 0:
            if point >= 0:
                return -1
            point = p
    return point


@njit(cache=True, nogil=True)
def analyse_moves(board, size, colour, zobrist):
    """What a stone of `colour` on each empty point would do.

    Args:
      board: int8[N*N].
      colour: 1 black or 2 white.
      zobrist: uint64[3, N*N], row 0 zeros.
    Returns:
      (hash uint64 of the board, next_hash uint64[N*N] after the move with its
      captures, captures int32[N*N] stones captured, suicide bool[N*N]);
      entries on occupied points are 0 / False.
    """
    nn = size * size
    h, label, liberties, group_hash, group_size = _groups(board, size, zobrist)
    nbr = np.empty(4, np.int32)
    next_hash = np.zeros(nn, np.uint64)
    captures = np.zeros(nn, np.int32)
    suicide = np.zeros(nn, np.bool_)
    taken = np.empty(4, np.int32)
    for m in range(nn):
        if board[m] != 0:
            continue
        nh = h ^ zobrist[colour, m]
        num_taken = 0
        alive = False
        for i in range(_neighbours(m, size, nbr)):
            n = nbr[i]
            if board[n] == 0:
                alive = True
            elif board[n] == colour:
                alive = alive or liberties[label[n]] > 1
            elif liberties[label[n]] == 1:
                gi = label[n]
                new = True
                for j in range(num_taken):
                    new = new and taken[j] != gi
                if new:
                    taken[num_taken] = gi
                    num_taken += 1
                    nh ^= group_hash[gi]
                    captures[m] += group_size[gi]
        next_hash[m] = nh
        suicide[m] = not alive and captures[m] == 0
    return h, next_hash, captures, suicide


@njit(cache=True, nogil=True)
def area_owner(board, size):
    """Who owns each point of int8[N*N] under Tromp-Taylor rules: int8[N*N], 1 black,
    2 white, 0 neither. A stone is its colour's; an empty point is the territory of a
    colour if every path from it through empty points reaches stones of that colour only."""
    nn = size * size
    owner = np.zeros(nn, np.int8)
    seen = np.zeros(nn, np.bool_)
    stack = np.empty(nn, np.int32)
    region = np.empty(nn, np.int32)
    nbr = np.empty(4, np.int32)
    for p in range(nn):
        if board[p] != 0:
            owner[p] = board[p]
        elif not seen[p]:
            seen[p] = True
            stack[0] = p
            top = 1
            count = 0
            touches = 0  # bit 1: black, bit 2: white
            while top > 0:
                top -= 1
                q = stack[top]
                region[count] = q
                count += 1
                for i in range(_neighbours(q, size, nbr)):
                    n = nbr[i]
                    if board[n] == 0:
                        if not seen[n]:
                            seen[n] = True
                            stack[top] = n
                            top += 1
                    else:
                        touches |= board[n]
            if touches == 1 or touches == 2:
                for i in range(count):
                    owner[region[i]] = touches
    return owner


@njit(cache=True, nogil=True)
def area_counts(board, size):
    """(Black's stones + territory, White's) under Tromp-Taylor rules, for int8[N*N]."""
    owner = area_owner(board, size)
    black = 0
    white = 0
    for p in range(size * size):
        if owner[p] == 1:
            black += 1
        elif owner[p] == 2:
            white += 1
    return black, white


@njit(cache=True, nogil=True)
def push_board(history, tensor):
    """A new int8[8, N, N] history with the board of open_spiel's tensor first.

    Args:
      history: int8[8, N, N], newest first.
      tensor: float32[4, N, N], open_spiel's planes (black, white, empty, to-play).
    """
    new = np.empty_like(history)
    size = history.shape[1]
    for i in range(size):
        for j in range(size):
            new[0, i, j] = np.int8(tensor[0, i, j] + 2 * tensor[1, i, j])
    new[1:] = history[:-1]
    return new


@njit(cache=True, nogil=True)
def observe(history, player):
    """float32[17, N, N] planes (see games/go.py) from int8[8, N, N] history; player 0 Black."""
    steps, size = history.shape[0], history.shape[1]
    obs = np.empty((2 * steps + 1, size, size), np.float32)
    mine, theirs = player + 1, 2 - player
    for t in range(steps):
        for i in range(size):
            for j in range(size):
                v = history[t, i, j]
                obs[t, i, j] = v == mine
                obs[steps + t, i, j] = v == theirs
    obs[2 * steps] = np.float32(player == 0)
    return obs


@njit(cache=True, nogil=True)
def board_hash(board, zobrist):
    """Zobrist hash (uint64) of int8[N*N]."""
    h = np.uint64(0)
    for p in range(board.shape[0]):
        h ^= zobrist[board[p], p]
    return h


@njit(cache=True, nogil=True)
def place_stone(new, size, move, colour):
    """Plays the legal `move` of `colour` on int8[N*N] `new` in place, captures removed."""
    new[move] = colour
    nn = size * size
    stamp = np.full(nn, -1, np.int32)
    stack = np.empty(nn, np.int32)
    group = np.empty(nn, np.int32)
    nbr = np.empty(4, np.int32)
    nbr2 = np.empty(4, np.int32)
    for i in range(_neighbours(move, size, nbr)):
        start = nbr[i]
        if new[start] != 3 - colour or stamp[start] >= 0:
            continue
        stamp[start] = start
        stack[0] = start
        top, count, free = 1, 0, False
        while top > 0:
            top -= 1
            q = stack[top]
            group[count] = q
            count += 1
            for j in range(_neighbours(q, size, nbr2)):
                n = nbr2[j]
                if new[n] == 0:
                    free = True
                elif new[n] == 3 - colour and stamp[n] < 0:
                    stamp[n] = start
                    stack[top] = n
                    top += 1
        if not free:
            for j in range(count):
                new[group[j]] = 0


@njit(cache=True, nogil=True)
def play_stone(board, size, move, colour):
    """int8[N*N]: a new board after `colour` plays the legal `move`, captures removed."""
    new = board.copy()
    place_stone(new, size, move, colour)
    return new


@njit(cache=True, nogil=True)
def insert_sorted(values, value):
    """uint64[P or P+1]: sorted `values` with `value` added (`values` itself if present)."""
    at = np.searchsorted(values, value)
    if at < values.shape[0] and values[at] == value:
        return values
    new = np.empty(values.shape[0] + 1, values.dtype)
    new[:at] = values[:at]
    new[at] = value
    new[at + 1:] = values[at:]
    return new


@njit(cache=True, nogil=True)
def drop_repeats(mask, next_hash, seen):
    """Clears mask[p] (bool[N*N+1], in place) where next_hash[p] is in sorted `seen`."""
    last = seen.shape[0] - 1
    for p in range(next_hash.shape[0]):
        if mask[p]:
            at = min(np.searchsorted(seen, next_hash[p]), last)
            if seen[at] == next_hash[p]:
                mask[p] = False


# Search nodes of GoBatch (games/go_batch.py). They live here, beside the kernels they
# call, because Numba's cache does not notice a change in another file's kernels.

PARENT, STATUS, PLAYER, KO, PASSES, MOVES = range(6)
NUM_FIELDS = 6
UNSET, ONGOING, TERMINAL = 0, 1, 2
"""Values of STATUS."""
OK, BAD_INDEX, BAD_PARENT, BAD_ACTION = 0, 1, 2, 3
"""Kernel error codes."""


@njit(cache=True, nogil=True)
def _node_planes(board, t, steps, mine, theirs, size, obs):
    """Writes planes t (mover's stones) and steps + t (opponent's) of obs from board."""
    for i in range(size):
        for j in range(size):
            v = board[i * size + j]
            obs[t, i, j] = v == mine
            obs[steps + t, i, j] = v == theirs


@njit(cache=True, nogil=True)
def _node_observation(boards, fields, history, b, node, size, obs):
    """Writes obs float32[17, N, N] of node (b, node) as `observe` would."""
    steps = history.shape[1]
    player = fields[b, node, PLAYER]
    mine, theirs = player + 1, 2 - player
    t, cur = 0, node
    while True:
        _node_planes(boards[b, cur], t, steps, mine, theirs, size, obs)
        t += 1
        if cur == 0 or t == steps:
            break
        cur = fields[b, cur, PARENT]
    back = 1
    while t < steps:  # past the root: the root's own history
        _node_planes(history[b, back], t, steps, mine, theirs, size, obs)
        t += 1
        back += 1
    obs[2 * steps] = np.float32(player == 0)


@njit(cache=True, nogil=True)
def _on_path(hashes, fields, b, node, h):
    """Whether a board from `node` up to (not including) the root has hash h."""
    cur = node
    while cur > 0:
        if hashes[b, cur] == h:
            return True
        cur = fields[b, cur, PARENT]
    return False


@njit(cache=True, nogil=True)
def _in_sorted(values, start, stop, h):
    at = start + np.searchsorted(values[start:stop], h)
    return at < stop and values[at] == h


@njit(cache=True, nogil=True)
def _node_legal(boards, fields, hashes, legal, seen, seen_start, zobrist, size, superko, b, node):
    """Fills legal[b, node] for the non-terminal node (b, node)."""
    board = boards[b, node]
    colour = fields[b, node, PLAYER] + 1
    mask = legal_moves(board, size, colour, fields[b, node, KO], zobrist)
    if superko:
        _, next_hash, _, _ = analyse_moves(board, size, colour, zobrist)
        for p in range(size * size):
            if mask[p] and (_in_sorted(seen, seen_start[b], seen_start[b + 1], next_hash[p])
                            or _on_path(hashes, fields, b, node, next_hash[p])):
                mask[p] = False
    legal[b, node] = mask


@njit(cache=True, nogil=True)
def _node_play(boards, fields, hashes, repeats, repeats_start, zobrist, size, komi, max_moves,
          b, parent, node, action):
    """Makes node (b, node) the position after `action` at (b, parent); sets its fields
    and hash. Returns (terminal, reward for the mover)."""
    nn = size * size
    mover = fields[b, parent, PLAYER]
    board = boards[b, node]
    board[:] = boards[b, parent]
    f = fields[b, node]
    f[PARENT] = parent
    f[PLAYER] = 1 - mover
    f[MOVES] = fields[b, parent, MOVES] + 1
    repeated = False
    if action == nn:
        f[PASSES] = fields[b, parent, PASSES] + 1
        f[KO] = -1
        hashes[b, node] = hashes[b, parent]
    else:
        f[PASSES] = 0
        place_stone(board, size, action, mover + 1)
        f[KO] = ko_point(boards[b, parent], board, action, size)
        h = board_hash(board, zobrist)
        hashes[b, node] = h
        repeated = (repeats_start[b + 1] > repeats_start[b]
                    and (_in_sorted(repeats, repeats_start[b], repeats_start[b + 1], h)
                         or _on_path(hashes, fields, b, parent, h)))
    terminal = f[PASSES] >= 2 or f[MOVES] >= max_moves or repeated
    f[STATUS] = TERMINAL if terminal else ONGOING
    if not terminal:
        return False, 0.0
    black, white = area_counts(board, size)
    score = float(black - white) - komi
    sign = 1.0 if score > 0 else -1.0 if score < 0 else 0.0
    return True, sign if mover == 0 else -sign


@njit(cache=True, nogil=True)
def expand_nodes(boards, fields, hashes, legal, history, seen, seen_start, repeats, repeats_start,
           zobrist, size, komi, max_moves, superko, leaf_tree, leaf_parent, leaf_node,
           leaf_action, obs_out, mask_out, reward_out, terminal_out):
    """Creates node positions from parent + action; see SearchBatch.expand and games/go_batch.py.

    Args:
      boards, fields, hashes, legal: the node arrays (games/go_batch.py), updated.
      history: int8[B, 8, N*N], the roots' histories.
      seen, repeats: uint64, per tree b the sorted hashes in [seen_start[b],
        seen_start[b + 1]) (resp. repeats_start), see `GoRoot`.
      zobrist: uint64[3, N*N]; size, komi, max_moves (max_game_length), superko.
      leaf_tree, leaf_parent, leaf_node, leaf_action: int32[L].
      obs_out: float32[L, 17, N, N]; mask_out: bool[L, N*N+1];
      reward_out: float32[L]; terminal_out: bool[L]; all written.
    Returns:
      (index of the first bad leaf or -1, error code). Processing stops there.
    """
    num_trees, capacity = boards.shape[0], boards.shape[1]
    num_actions = legal.shape[2]
    for l in range(leaf_tree.shape[0]):
        node = leaf_node[l]
        if node < 0:
            continue
        b, parent, action = leaf_tree[l], leaf_parent[l], leaf_action[l]
        if b < 0 or b >= num_trees or parent < 0 or parent >= capacity \
                or node >= capacity or node == parent:
            return l, BAD_INDEX
        if fields[b, parent, STATUS] != ONGOING:
            return l, BAD_PARENT
        if action < 0 or action >= num_actions or not legal[b, parent, action]:
            return l, BAD_ACTION
        terminal, reward = _node_play(boards, fields, hashes, repeats, repeats_start, zobrist,
                                 size, komi, max_moves, b, parent, node, action)
        reward_out[l] = reward
        terminal_out[l] = terminal
        if terminal:
            legal[b, node] = False
            obs_out[l] = 0.0
        else:
            _node_legal(boards, fields, hashes, legal, seen, seen_start, zobrist, size, superko,
                   b, node)
            _node_observation(boards, fields, history, b, node, size, obs_out[l])
        mask_out[l] = legal[b, node]
    return -1, OK


@njit(cache=True, nogil=True)
def observe_root_nodes(boards, fields, legal, history, size, obs_out, mask_out):
    """Writes obs_out float32[B, 17, N, N] and mask_out bool[B, N*N+1] of node 0."""
    for b in range(boards.shape[0]):
        _node_observation(boards, fields, history, b, 0, size, obs_out[b])
        mask_out[b] = legal[b, 0]
