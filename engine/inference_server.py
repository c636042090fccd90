"""A shared inference server: one process owns the network, actors send batches.

Several self-play actor processes each hold a `RemoteEvaluator` (the
Evaluator protocol). The server process gathers their pending requests,
runs one `evaluate` call on the concatenated batch and scatters the results
back, so the network sees larger batches than any single actor produces.

Transport, per client k: one shared-memory block holding
  obs     float32[max_batch, *obs_shape]
  mask    bool[max_batch, A]
  logits  float32[max_batch, A]
  value   float32[max_batch]
and one duplex Pipe over which only small ints travel: the client writes its
inputs, sends the row count B and blocks on the reply (B, or an error string).
A new `client(k)` makes a fresh Pipe and hands the server its end through a
control pipe, so a restarted actor can reconnect; the block for k is reused.

The network comes from `source`, a picklable object whose `poll()` returns an
Evaluator (new weights) or None (keep the current one). It is polled in the
server process once at start and then at most every `poll_seconds`, between
batches.

Process rules: create, start, `client()` and `close()` the server in one
process (the training loop); pass each RemoteEvaluator to its actor as a
Process argument; one RemoteEvaluator serves one thread.
"""

from __future__ import annotations

import math
import multiprocessing as mp
import os
import signal
import sys
import threading
import time
import traceback
from multiprocessing import resource_tracker
from multiprocessing.connection import Connection, wait
from multiprocessing.shared_memory import SharedMemory

import numpy as np

_ALIGN = 64                 # byte alignment of each array inside a block
_WAIT_SECONDS = 0.5         # server idle wake-up, to notice parent death
_CLIENT_WAIT_SECONDS = 0.5  # client wake-up while blocked, to notice a stop
_JOIN_SECONDS = 5.0         # close(): grace period before kill
_STOPPED = "inference server stopped"
_STAT_EVALUATIONS, _STAT_BATCHES, _STAT_NETWORK_S, _STAT_RELOADS = range(4)
_ATTACH_LOCK = threading.Lock()


def _layout(max_batch: int, obs_shape: tuple[int, ...], num_actions: int):
    """[(offset, shape, dtype)] for obs, mask, logits, value, and the block size."""
    specs = [((max_batch, *obs_shape), np.float32), ((max_batch, num_actions), np.bool_),
             ((max_batch, num_actions), np.float32), ((max_batch,), np.float32)]
    layout, offset = [], 0
    for shape, dtype in specs:
        layout.append((offset, shape, dtype))
        nbytes = math.prod(shape) * np.dtype(dtype).itemsize
        offset += -(-nbytes // _ALIGN) * _ALIGN
    return layout, max(offset, 1)


def _views(shm: SharedMemory, layout) -> tuple[np.ndarray, ...]:
    """(obs, mask, logits, value) arrays over the block; see the module docstring."""
    return tuple(np.ndarray(shape, dtype, buffer=shm.buf, offset=offset)
                 for offset, shape, dtype in layout)


def _attach(name: str) -> SharedMemory:
    """Attaches an existing block without registering it with resource_tracker.

    Only the creating process may own the block: before Python 3.13 an
    attaching process registers it too, and a process with its own tracker
    then unlinks the block, or warns of a leak, when it exits.
    """
    if sys.version_info >= (3, 13):
        return SharedMemory(name=name, track=False)
    with _ATTACH_LOCK:
        register = resource_tracker.register
        resource_tracker.register = lambda name, rtype: None
        try:
            return SharedMemory(name=name)
        finally:
            resource_tracker.register = register


class RemoteEvaluator:
    """Evaluator protocol through an InferenceServer; made by `InferenceServer.client`.

    Picklable by multiprocessing: pass it to the actor process as a Process
    argument. Shared memory is attached on the first call. Not thread-safe.
    """

    def __init__(self, k: int, shm_name: str, max_batch: int, obs_shape: tuple[int, ...],
                 num_actions: int, conn: Connection, stopped):
        self.k = k
        self.max_batch = max_batch
        self.obs_shape = tuple(obs_shape)
        self.num_actions = num_actions
        self._shm_name = shm_name
        self._conn = conn
        self._stopped = stopped  # mp.Event: set by close() and by the server on exit
        self._shm: SharedMemory | None = None
        self._arrays: tuple[np.ndarray, ...] | None = None

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_shm"] = state["_arrays"] = None
        return state

    def evaluate(self, obs: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """See Evaluator.evaluate. Blocks until the server replies.

        Args:
          obs: float32[B, *obs_shape], B <= max_batch.
          mask: bool[B, A].
        Returns:
          logits float32[B, A] and value float32[B] (fresh arrays).
        Raises:
          ValueError: wrong shapes or B > max_batch.
          RuntimeError: the server stopped, or its evaluator raised.
        """
        obs = np.asarray(obs, dtype=np.float32)
        mask = np.asarray(mask, dtype=np.bool_)
        b = obs.shape[0] if obs.ndim else -1
        if obs.shape[1:] != self.obs_shape or b < 0:
            raise ValueError(f"obs must have shape [B, {', '.join(map(str, self.obs_shape))}]"
                             f", got {obs.shape}")
        if mask.shape != (b, self.num_actions):
            raise ValueError(f"mask must have shape [{b}, {self.num_actions}], got {mask.shape}")
        if b > self.max_batch:
            raise ValueError(f"batch {b} exceeds the server's max_batch {self.max_batch}")
        if b == 0:
            return np.zeros((0, self.num_actions), np.float32), np.zeros((0,), np.float32)
        if self._stopped.is_set():
            raise RuntimeError(_STOPPED)
        if self._arrays is None:
            self._shm = _attach(self._shm_name)
            self._arrays = _views(self._shm, _layout(self.max_batch, self.obs_shape,
                                                     self.num_actions)[0])
        obs_buf, mask_buf, logits_buf, value_buf = self._arrays
        obs_buf[:b] = obs
        mask_buf[:b] = mask
        reply = self._round_trip(b)
        if isinstance(reply, str):
            raise RuntimeError(f"inference server: evaluation failed: {reply}")
        return logits_buf[:b].copy(), value_buf[:b].copy()

    def _round_trip(self, b: int):
        try:
            self._conn.send(b)
            # EOF makes poll() true; the timeout only covers a server that
            # stopped without closing our pipe (it never received it).
            while not self._conn.poll(_CLIENT_WAIT_SECONDS):
                if self._stopped.is_set():
                    raise RuntimeError(_STOPPED)
            return self._conn.recv()
        except (EOFError, BrokenPipeError, ConnectionResetError, OSError) as e:
            raise RuntimeError(_STOPPED) from e

    def close(self) -> None:
        """Detaches shared memory and closes the pipe; idempotent."""
        self._arrays = None  # the views must go before the buffer they export
        if self._shm is not None:
            self._shm.close()
            self._shm = None
        self._conn.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass


class InferenceServer:
    """Owns the evaluator in a server process; batches requests of `num_clients` clients.

    Args:
      source: picklable, with `poll() -> Evaluator | None`, called in the server
        process: once at start (must return an evaluator), then at most every
        `poll_seconds` between batches; an evaluator replaces the current one.
      num_clients: number of client slots k = 0 .. num_clients-1.
      obs_shape: observation shape without the batch axis.
      num_actions: A.
      max_batch: largest batch one client may send.
      ctx: multiprocessing context; default the 'spawn' context.
      poll_seconds: minimum interval between `source.poll()` calls.
      gather_seconds: when some but not all connected clients are waiting,
        wait up to this long for the others before evaluating.
    """

    def __init__(self, source, num_clients: int, obs_shape: tuple, num_actions: int,
                 max_batch: int, ctx=None, poll_seconds: float = 1.0,
                 gather_seconds: float = 0.0):
        if num_clients <= 0 or max_batch <= 0 or num_actions <= 0:
            raise ValueError("num_clients, max_batch and num_actions must be positive, got "
                             f"{num_clients}, {max_batch}, {num_actions}")
        if poll_seconds < 0 or gather_seconds < 0:
            raise ValueError("poll_seconds and gather_seconds must be >= 0")
        self._ctx = ctx if ctx is not None else mp.get_context("spawn")
        self._source = source
        self.num_clients = int(num_clients)
        self.obs_shape = tuple(int(d) for d in obs_shape)
        self.num_actions = int(num_actions)
        self.max_batch = int(max_batch)
        self.poll_seconds = float(poll_seconds)
        self.gather_seconds = float(gather_seconds)
        _, size = _layout(self.max_batch, self.obs_shape, self.num_actions)
        self._shms = [SharedMemory(create=True, size=size) for _ in range(self.num_clients)]
        self._stats = self._ctx.Array("d", 4)
        self._stopped = self._ctx.Event()
        self._control_recv, self._control_send = self._ctx.Pipe(duplex=False)
        self._process = None
        self._closed = False

    def start(self) -> None:
        """Starts the server process (daemon); blocks until its first poll succeeded.

        Raises:
          RuntimeError: already started or closed, or the server failed to
            start (the message carries the server's error).
        """
        if self._process is not None or self._closed:
            raise RuntimeError("InferenceServer.start() may be called once, before close()")
        ready_recv, ready_send = self._ctx.Pipe(duplex=False)
        args = (self._source, [s.name for s in self._shms], self.max_batch, self.obs_shape,
                self.num_actions, self._control_recv, ready_send, self._stats, self._stopped,
                os.getpid(), self.poll_seconds, self.gather_seconds)
        self._process = self._ctx.Process(target=_serve, args=args, daemon=True,
                                          name="inference-server")
        self._process.start()
        ready_send.close()
        # The server holds the only read end now: client() after its death
        # fails at once instead of queueing a pipe nobody will take.
        self._control_recv.close()
        try:
            message = ready_recv.recv()  # EOF if the process dies before replying
        except EOFError:
            message = f"server process exited with code {self._process.exitcode}"
        finally:
            ready_recv.close()
        if message != "ready":
            self.close()
            raise RuntimeError(f"inference server failed to start: {message}")

    def client(self, k: int) -> RemoteEvaluator:
        """A new client for slot k; replaces any earlier client of slot k.

        Call again for the same k after that slot's actor died. The previous
        client of slot k must not be used any more.
        """
        if not 0 <= k < self.num_clients:
            raise ValueError(f"client index must be in [0, {self.num_clients}), got {k}")
        if self._closed:
            raise RuntimeError(_STOPPED)
        mine, theirs = self._ctx.Pipe()
        try:
            self._control_send.send((k, theirs))
        except OSError as e:
            raise RuntimeError(_STOPPED) from e
        finally:
            theirs.close()  # the server now holds the only copy: its death gives us EOF
        return RemoteEvaluator(k, self._shms[k].name, self.max_batch, self.obs_shape,
                               self.num_actions, mine, self._stopped)

    def stats(self) -> dict:
        """Counters: evaluations (rows), batches (evaluate calls), network_s, reloads."""
        with self._stats.get_lock():
            s = list(self._stats.get_obj())
        return {"evaluations": int(s[_STAT_EVALUATIONS]), "batches": int(s[_STAT_BATCHES]),
                "network_s": float(s[_STAT_NETWORK_S]), "reloads": int(s[_STAT_RELOADS])}

    @property
    def pid(self) -> int | None:
        """The server process's id (None before start)."""
        return self._process.pid if self._process is not None else None

    def is_alive(self) -> bool:
        """Whether the server process is running."""
        return self._process is not None and self._process.is_alive()

    def close(self) -> None:
        """Stops and joins the server (kills it after a timeout), unlinks shared memory.

        Idempotent. Clients then raise RuntimeError("inference server stopped").
        """
        if self._closed:
            return
        self._closed = True
        self._stopped.set()
        try:
            self._control_send.send(None)  # wakes the server at once
        except OSError:
            pass
        if self._process is not None:
            self._process.join(_JOIN_SECONDS)
            if self._process.is_alive():
                self._process.kill()
                self._process.join(_JOIN_SECONDS)
        self._control_send.close()
        self._control_recv.close()
        for shm in self._shms:
            shm.close()
            try:
                shm.unlink()
            except FileNotFoundError:
                pass

    def __enter__(self) -> "InferenceServer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _check_evaluator(evaluator, obs_shape, num_actions) -> None:
    if not hasattr(evaluator, "evaluate"):
        raise TypeError(f"source.poll() returned {type(evaluator).__name__}, not an Evaluator")
    a = getattr(evaluator, "num_actions", num_actions)
    shape = getattr(evaluator, "obs_shape", None)
    if a != num_actions or (shape is not None and tuple(shape) != tuple(obs_shape)):
        raise ValueError(f"evaluator has num_actions={a}, obs_shape={shape}; the server "
                         f"was made for {num_actions}, {tuple(obs_shape)}")


def _serve(source, shm_names, max_batch, obs_shape, num_actions, control, ready, stats,
           stopped, parent_pid, poll_seconds, gather_seconds) -> None:
    """Server process entry point: first poll, then the batching loop until stopped."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    try:
        evaluator = source.poll()
        if evaluator is None:
            raise RuntimeError(f"{type(source).__name__}.poll() returned None at start; "
                               "the first poll must return an evaluator")
        _check_evaluator(evaluator, obs_shape, num_actions)
    except Exception as e:
        ready.send(f"{type(e).__name__}: {e}\n\nserver traceback:\n{traceback.format_exc()}")
        ready.close()
        return
    ready.send("ready")
    ready.close()
    layout, _ = _layout(max_batch, obs_shape, num_actions)
    shms = [_attach(name) for name in shm_names]
    arrays = [_views(shm, layout) for shm in shms]
    try:
        _loop(source, evaluator, arrays, control, stats, stopped, parent_pid,
              poll_seconds, gather_seconds, obs_shape, num_actions)
    finally:
        stopped.set()
        del arrays  # the views must go before the buffers they export
        for shm in shms:
            shm.close()


def _loop(source, evaluator, arrays, control, stats, stopped, parent_pid, poll_seconds,
          gather_seconds, obs_shape, num_actions) -> None:
    conns: dict[int, Connection] = {}  # slot k -> server end of its current pipe
    last_poll = time.monotonic()
    while not stopped.is_set() and os.getppid() == parent_pid:
        if time.monotonic() - last_poll >= poll_seconds:
            new = source.poll()
            last_poll = time.monotonic()
            if new is not None:
                _check_evaluator(new, obs_shape, num_actions)
                evaluator = new
                with stats.get_lock():
                    stats[_STAT_RELOADS] += 1
        ready = wait([control, *conns.values()], _WAIT_SECONDS)
        # New pipes first, so that no request of a replaced pipe is answered
        # on its successor.
        if control in ready and not _take_control(control, conns):
            return
        pending: dict[int, tuple[Connection, int]] = {}
        for conn in ready:
            if conn is not control:
                _receive(conn, conns, pending)
        if gather_seconds > 0 and pending and len(pending) < len(conns):
            _gather(conns, pending, gather_seconds)
        if pending:
            _run_batch(evaluator, arrays, conns, pending, stats)


def _take_control(control: Connection, conns: dict[int, Connection]) -> bool:
    """Installs a new client pipe; False on a stop message or a closed control pipe."""
    try:
        message = control.recv()
    except (EOFError, OSError):
        return False
    if message is None:
        return False
    k, conn = message
    old = conns.pop(k, None)
    if old is not None:
        old.close()
    conns[k] = conn
    return True


def _receive(conn: Connection, conns: dict[int, Connection],
             pending: dict[int, tuple[Connection, int]]) -> None:
    """Reads one request (a row count) into `pending`; drops the client on EOF."""
    k = next((key for key, c in conns.items() if c is conn), None)
    if k is None:
        return  # replaced by a newer client of the same slot
    try:
        pending[k] = (conn, int(conn.recv()))
    except (EOFError, OSError):
        conn.close()
        del conns[k]


def _gather(conns, pending, gather_seconds: float) -> None:
    """Waits up to gather_seconds for the connected clients not yet in `pending`."""
    deadline = time.monotonic() + gather_seconds
    while len(pending) < len(conns):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        idle = [c for k, c in conns.items() if k not in pending]
        ready = wait(idle, remaining)
        if not ready:
            return
        for conn in ready:
            _receive(conn, conns, pending)


def _run_batch(evaluator, arrays, conns, pending: dict[int, tuple[Connection, int]],
               stats) -> None:
    """One evaluate call on the concatenated requests; scatters results and replies."""
    slots = sorted(pending)
    if len(slots) == 1:
        k, n = slots[0], pending[slots[0]][1]
        obs, mask = arrays[k][0][:n], arrays[k][1][:n]
    else:
        obs = np.concatenate([arrays[k][0][:pending[k][1]] for k in slots])
        mask = np.concatenate([arrays[k][1][:pending[k][1]] for k in slots])
    start = time.perf_counter()
    try:
        logits, value = evaluator.evaluate(obs, mask)
        reply = None
    except Exception as e:  # reported to the waiting clients; the server goes on
        reply = f"{type(e).__name__}: {e}"
    network_s = time.perf_counter() - start
    with stats.get_lock():  # before any reply: a client that has its answer sees it counted
        stats[_STAT_EVALUATIONS] += sum(pending[k][1] for k in slots)
        stats[_STAT_BATCHES] += 1
        stats[_STAT_NETWORK_S] += network_s
    row = 0
    for k in slots:
        conn, n = pending[k]
        if reply is None:
            arrays[k][2][:n] = logits[row:row + n]
            arrays[k][3][:n] = value[row:row + n]
        row += n
        try:
            conn.send(n if reply is None else reply)
        except OSError:  # BrokenPipeError, ConnectionResetError: the client died
            conn.close()
            if conns.get(k) is conn:
                del conns[k]


__all__ = ["InferenceServer", "RemoteEvaluator"]
