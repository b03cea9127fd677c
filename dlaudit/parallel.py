"""Sharding an audit's work over samples: in-process (the default, no Ray import) or on Ray, with the same
numbers either way, resumable from a checkpoint folder.

Work that outgrows one machine (AutoAttack on thousands of inputs, randomized smoothing with
100,000 noise samples per input, LIME on many images, a bootstrap over millions of rows) is a
list of *shards*: contiguous ranges of samples (or of bootstrap resamples). Every random draw is
keyed by the sample's global index (and the restart or resample index), never by the shard or
the worker, so one worker, two workers and the in-process run give the same results.

- :class:`InProcess` runs the shards one after the other in this process.
- :class:`RayExecutor` runs them on a Ray runtime: ``workers`` starts a local one with that many
  worker processes (Ray's local mode needs no cluster); ``address`` (or ``DLAUDIT_RAY_ADDRESS``)
  joins an existing cluster. The model is shipped to the workers once (an object-store
  reference to its bytes), loaded by one long-lived actor per worker; a worker that dies
  mid-shard is restarted and its shard retried, which gives the same result.
- A :class:`Checkpoint` folder keeps each finished shard (written atomically); a run started
  again with the same model, data and arguments skips them, and a folder from a different run
  is refused with what differs.

Threads: each Ray worker runs torch with ``max(1, cores // workers)`` threads (one when the
workers fill the machine), so N workers on N cores do not oversubscribe. The analyses ask for
the current executor with :func:`current`; :func:`using` sets it for a block.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import io
import json
import logging
import math
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ConfigError
from .limits import cpu_count, max_workers

if TYPE_CHECKING:
    from .bundle import ModelBundle
    from .utils import ProgressFn

__all__ = [
    "Executor",
    "InProcess",
    "RayExecutor",
    "Checkpoint",
    "current",
    "local",
    "active",
    "using",
    "executor_for",
    "shard_ranges",
    "plan_shards",
    "map_samples",
    "cat",
    "rows_check",
    "stable_key",
    "threads_per_worker",
]

log = logging.getLogger(__name__)

ShardFn = Callable[["ModelBundle", Any], Any]
"""``fn(bundle, payload) -> result``: one shard of work, a module-level function (it travels by name)."""

SHARDS_PER_WORKER = 4
"""Shards per worker: enough to balance the load and to make a lost shard cheap to redo."""


def threads_per_worker(workers: int, cores: int | None = None) -> int:
    """Torch threads for each of ``workers`` processes on ``cores`` cores (default: this machine's): never oversubscribed."""
    cores = cores or os.cpu_count() or 1
    return max(1, cores // max(1, workers))


def shard_ranges(n: int, workers: int, *, align: int = 1, minimum: int = 1) -> list[tuple[int, int]]:
    """``[(start, stop), ...]`` covering ``range(n)``: about :data:`SHARDS_PER_WORKER` per worker,
    each a multiple of ``align`` (a batch size, so batches are the same as in one process)."""
    if n <= 0:
        return []
    target = max(minimum, math.ceil(n / (max(1, workers) * SHARDS_PER_WORKER)))
    size = max(align, math.ceil(target / align) * align)
    return [(s, min(n, s + size)) for s in range(0, n, size)]


def stable_key(*parts: Any) -> str:
    """A short hash of ``parts`` that is the same in every process (tensors by their bytes)."""
    h = hashlib.sha256()
    for p in parts:
        h.update(_stable_bytes(p))
        h.update(b"|")
    return h.hexdigest()[:20]


def _stable_bytes(p: Any) -> bytes:
    import numpy as np
    import torch

    if isinstance(p, torch.Tensor):
        t = p.detach().cpu().contiguous()
        return str(t.dtype).encode() + str(tuple(t.shape)).encode() + t.numpy().tobytes()
    if isinstance(p, np.ndarray):
        return str(p.dtype).encode() + str(p.shape).encode() + np.ascontiguousarray(p).tobytes()
    return repr(p).encode()


# -- checkpoints -------------------------------------------------------------------------------


class Checkpoint:
    """A folder of finished shards, for resuming a long run; refuses a folder from another run.

    ``fingerprint`` says what the run is (model, data, arguments); it is stored in
    ``run.json`` the first time, and a later run must match it field by field.

    Every shard is recorded in ``shards.json`` with the SHA-256 digest and size of its file,
    under the shard's key (which hashes the run's arguments and the shard's inputs). A shard
    is reused only when its file has that size and digest, loads as plain tensors and numbers
    (``torch.load(weights_only=True)``: never unpickled as objects) and has the shape its
    caller expects; any other shard (edited, truncated, of the wrong length, not written by
    dlaudit) is computed again, with a warning, and counted in :attr:`recomputed`. The digest
    catches corruption and edits of a shard; someone who can write the folder can also
    rewrite ``shards.json``, so a checkpoint is only as trusted as the folder it is in.
    """

    INDEX = "shards.json"

    def __init__(self, folder: str | Path, fingerprint: dict[str, Any]) -> None:
        self.folder = Path(folder)
        if self.folder.exists() and not self.folder.is_dir():
            raise ConfigError(f"--checkpoint {self.folder} is a file; give a folder (it is created if missing)")
        self.folder.mkdir(parents=True, exist_ok=True)
        self.fingerprint = dict(fingerprint)
        meta = self.folder / "run.json"
        if meta.is_file():
            try:
                stored = json.loads(meta.read_text(encoding="utf-8"))
            except (ValueError, OSError) as err:
                raise ConfigError(
                    f"--checkpoint {self.folder}: run.json is unreadable ({err}); use an empty folder"
                ) from err
            if not isinstance(stored, dict):
                raise ConfigError(f"--checkpoint {self.folder}: run.json is not a JSON object; use an empty folder")
            differ = sorted(k for k in set(stored) | set(self.fingerprint) if stored.get(k) != self.fingerprint.get(k))
            if differ:
                raise ConfigError(
                    f"--checkpoint {self.folder} holds a different run (differs in: {', '.join(differ)}); "
                    "use another folder, or rerun with the same model, data and arguments to resume"
                )
        else:
            from .utils import atomic_write

            with atomic_write(meta, "w") as fh:
                json.dump(self.fingerprint, fh, indent=1, sort_keys=True, default=str)
        self.index = self._read_index()
        self.reused = 0
        self.recomputed: list[str] = []
        """One line per shard that was found but not trusted, and why (also logged as a warning)."""

    def _path(self, key: str) -> Path:
        return self.folder / f"shard-{key}.pt"

    def _read_index(self) -> dict[str, dict[str, Any]]:
        """``shards.json``: key -> ``{"sha256": ..., "bytes": ...}``; an unreadable index trusts no shard."""
        path = self.folder / self.INDEX
        if not path.is_file():
            return {}
        try:
            if path.stat().st_size > MAX_INDEX_BYTES:
                raise ValueError(f"larger than {MAX_INDEX_BYTES:,} bytes")
            data = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, OSError, RecursionError) as err:
            log.warning("checkpoint index %s is unreadable (%s); every shard in it will be computed again", path, err)
            return {}
        if not isinstance(data, dict):
            return {}
        return {
            k: v
            for k, v in data.items()
            if isinstance(v, dict) and isinstance(v.get("sha256"), str) and type(v.get("bytes")) is int
        }

    def _distrust(self, path: Path, why: str) -> None:
        self.recomputed.append(f"{path.name}: {why}")
        log.warning("checkpoint shard %s %s; computing it again", path.name, why)

    def get(self, key: str, check: ShardCheck | None = None) -> Any | None:
        """The stored result under ``key`` if it can be trusted (see the class), else None.

        ``check(value)`` returns why a loaded value does not fit its shard ('' when it does).
        """
        import pickle

        import torch

        path = self._path(key)
        if not path.is_file():
            return None
        entry = self.index.get(key)
        if entry is None:
            self._distrust(path, "has no digest in shards.json (it was not written by this run)")
            return None
        try:
            size = path.stat().st_size
            if size != entry["bytes"]:
                self._distrust(path, f"is {size:,} bytes where {entry['bytes']:,} were written")
                return None
            data = path.read_bytes()
        except OSError as err:
            self._distrust(path, f"is unreadable ({err.strerror or err})")
            return None
        if hashlib.sha256(data).hexdigest() != entry["sha256"]:
            self._distrust(path, "does not match the digest recorded when it was written (edited or corrupted)")
            return None
        try:
            value = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        except (RuntimeError, OSError, EOFError, ValueError, TypeError, AttributeError, pickle.UnpicklingError) as err:
            self._distrust(path, f"does not load as plain tensors ({_first_line(err)})")
            return None
        why = check(value) if check is not None else ""
        if why:
            self._distrust(path, f"does not fit its shard ({why})")
            return None
        self.reused += 1
        return value

    def put(self, key: str, value: Any) -> None:
        """Write the shard, then its digest in ``shards.json`` (each atomically)."""
        import torch

        from .utils import atomic_write

        buf = io.BytesIO()
        torch.save(value, buf)
        data = buf.getvalue()
        with atomic_write(self._path(key)) as fh:
            fh.write(data)
        self.index[key] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
        with atomic_write(self.folder / self.INDEX, "w") as fh:
            json.dump(self.index, fh, indent=0, sort_keys=True)


MAX_INDEX_BYTES = 64 * 1024 * 1024
"""A ``shards.json`` larger than this is not read (every shard is then computed again)."""

ShardCheck = Callable[[Any], str]
"""``check(value) -> ''`` when a stored shard's value fits it, else why not."""


def _first_line(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return f"{type(err).__name__}: {lines[0][:160]}" if lines else type(err).__name__


def rows_check(
    n: int,
    per_row: Sequence[str],
    *,
    shapes: dict[str, tuple[int, ...]] | None = None,
    kinds: dict[str, type | tuple[type, ...]] | None = None,
) -> ShardCheck:
    """A :data:`ShardCheck` for a dict whose ``per_row`` entries are tensors of ``n`` rows, whose
    ``shapes`` entries (when present) have exactly those shapes, and whose ``kinds`` entries are
    of those types."""

    def check(value: Any) -> str:
        import torch

        if not isinstance(value, dict):
            return f"a {type(value).__name__}, not a dict"
        for name in per_row:
            t = value.get(name)
            if not isinstance(t, torch.Tensor):
                return f"{name!r} is missing or not a tensor"
            if t.ndim < 1 or t.shape[0] != n:
                return f"{name!r} has shape {tuple(t.shape)}, not {n} rows"
        for name, shape in (shapes or {}).items():
            t = value.get(name)
            if name in value and (not isinstance(t, torch.Tensor) or tuple(t.shape) != tuple(shape)):
                return f"{name!r} is not a tensor of shape {tuple(shape)}"
        for name, kind in (kinds or {}).items():
            if not isinstance(value.get(name), kind) or isinstance(value.get(name), bool):
                return f"{name!r} is missing or of the wrong type"
        return ""

    return check


# -- sharding per-sample work: plan, map, join ---------------------------------------------------


def plan_shards(
    n: int, *, align: int = 1, resumable: bool = True, executor: Executor | None = None
) -> list[tuple[int, int]]:
    """The ranges to split ``n`` samples (or resample blocks) into, or ``[]`` to do the work in one piece here.

    Parameters
    ----------
    n
        How many samples.
    align
        Every shard but the last is a multiple of this (the batch size, so batches are one run's).
    resumable
        Whether one shard is still worth sending through the executor when it keeps a checkpoint
        (work worth resuming); False for cheap work that only shards for other processes.
    executor
        Default: :func:`current`.

    Returns
    -------
    list of (start, stop)
        Empty when the executor does not shard (in-process, no checkpoint) or when one shard
        would do; then the caller runs its own single-process code, with the same numbers.
    """
    ex = executor or current()
    if not ex.shards_work:
        return []
    ranges = shard_ranges(n, ex.workers, align=align)
    return ranges if len(ranges) > 1 or (resumable and ranges and ex.checkpoint is not None) else []


def map_samples(
    fn: ShardFn,
    bundle: ModelBundle | None,
    ranges: Sequence[tuple[int, int]],
    payload: Callable[[int, int], Any],
    *,
    key: Callable[[Any], Sequence[Any]],
    rows: Sequence[str] = (),
    row_shapes: Mapping[str, Sequence[int]] | None = None,
    kinds: dict[str, type | tuple[type, ...]] | None = None,
    stage: str,
    progress: ProgressFn | None = None,
    executor: Executor | None = None,
) -> list[Any]:
    """``fn(bundle, payload(start, stop))`` for every range of :func:`plan_shards`, in order, on the executor.

    The one place the analyses' per-sample work meets the executor: each shard's payload, its
    checkpoint key and the check of a stored result are made here the same way for every caller.

    Parameters
    ----------
    fn
        One shard of work, a module-level function (it travels to Ray workers by name).
    bundle
        The model the shards run on (shipped once per worker), or None (``fn(None, payload)``).
    ranges
        ``[(start, stop), ...]``, from :func:`plan_shards`.
    payload
        ``payload(start, stop)``: what ``fn`` needs for those samples (CPU tensors, plain values).
    key
        ``key(payload)``: the parts of the shard's checkpoint key (:func:`stable_key` hashes them);
        everything the result depends on.
    rows, row_shapes, kinds
        What a result stored in the checkpoint must hold to be reused (:func:`rows_check`): the
        ``rows`` entries are tensors with a row per sample of the shard, a ``row_shapes`` entry
        (when present) has rows of that shape, and a ``kinds`` entry is of that type. None of the
        three: stored results are taken as they are.
    stage, progress
        Progress is reported as ``progress(f"{stage} (shards)", done, total)``.
    executor
        Default: :func:`current`.

    Returns
    -------
    list
        Each shard's result, in the order of ``ranges``; :func:`cat` joins one entry of them.

    Examples
    --------
    >>> ranges = plan_shards(len(x), align=batch_size)  # doctest: +SKIP
    >>> parts = map_samples(  # doctest: +SKIP
    ...     attack_shard, bundle, ranges, lambda a, b: {"x": x[a:b], "seed": seed},
    ...     key=lambda p: ("attack", p["seed"], p["x"]), rows=("pred",), stage="attack")
    >>> pred = cat(parts, "pred")  # doctest: +SKIP
    """
    ex = executor or current()
    payloads = [payload(a, b) for a, b in ranges]
    keys = [stable_key(*key(p)) for p in payloads]
    checks = (
        [
            rows_check(
                b - a,
                rows,
                shapes={name: (b - a, *shape) for name, shape in (row_shapes or {}).items()},
                kinds=kinds,
            )
            for a, b in ranges
        ]
        if rows or row_shapes or kinds
        else None
    )
    return ex.map(fn, bundle, payloads, keys=keys, checks=checks, stage=stage, progress=progress)


def cat(parts: Sequence[Any], name: Any) -> Any:
    """Entry ``name`` of every shard's result joined along the rows (tensors with ``torch.cat``, arrays with
    ``np.concatenate``), in shard order: the whole run's."""
    import numpy as np
    import torch

    values = [p[name] for p in parts]
    if all(isinstance(v, np.ndarray) for v in values):
        return np.concatenate(values)
    return torch.cat(values)


# -- executors ---------------------------------------------------------------------------------


@dataclass
class Executor:
    """Runs shards; :meth:`map` keeps the order of ``payloads`` in its results.

    ``bundle`` is the model the shards run on (shipped once per worker), or None for work
    that needs no model (a bootstrap over predictions): ``fn(None, payload)``.
    """

    workers: int = 1
    checkpoint: Checkpoint | None = None
    stats: dict[str, Any] = field(default_factory=lambda: {"shards": 0, "reused": 0, "seconds_per_shard": []})

    backend: str = "in-process"

    @property
    def parallel(self) -> bool:
        """Whether shards go to other processes (the analyses only shard when they do, or when checkpointing)."""
        return False

    @property
    def shards_work(self) -> bool:
        """Whether splitting work into shards is worth it: other processes, or a checkpoint to resume from."""
        return self.parallel or self.checkpoint is not None

    def map(
        self,
        fn: ShardFn,
        bundle: ModelBundle | None,
        payloads: Sequence[Any],
        *,
        keys: Sequence[str] | None = None,
        checks: Sequence[ShardCheck] | None = None,
        stage: str = "shards",
        progress: ProgressFn | None = None,
    ) -> list[Any]:
        """``fn(bundle, payload)`` for every payload, in order; with a checkpoint and ``keys``, a shard
        stored under its key is reused when it can be trusted (``checks[i]`` says whether the
        stored value fits payload ``i``; see :class:`Checkpoint`) and computed and stored otherwise."""
        results: list[Any] = [None] * len(payloads)
        todo = []
        for i in range(len(payloads)):
            cached = (
                self.checkpoint.get(keys[i], checks[i] if checks is not None else None)
                if self.checkpoint is not None and keys is not None
                else None
            )
            if cached is not None:
                results[i] = cached
                self.stats["reused"] += 1
            else:
                todo.append(i)
        done = len(payloads) - len(todo)
        for i, value, seconds in self._run(fn, bundle, [payloads[i] for i in todo], todo):
            results[i] = value
            self.stats["shards"] += 1
            self.stats["seconds_per_shard"].append(round(seconds, 3))
            if self.checkpoint is not None and keys is not None:
                self.checkpoint.put(keys[i], value)
            done += 1
            if progress is not None:
                progress(f"{stage} (shards)", done, len(payloads))
        return results

    def _run(
        self, fn: ShardFn, bundle: ModelBundle | None, payloads: list[Any], positions: list[int]
    ) -> Iterator[tuple[int, Any, float]]:
        for i, p in zip(positions, payloads):
            start = time.perf_counter()
            yield i, fn(bundle, p), time.perf_counter() - start

    def describe(self) -> dict[str, Any]:
        """What the report's provenance records."""
        per = self.stats["seconds_per_shard"]
        return {
            "backend": self.backend,
            "workers": self.workers,
            "shards": self.stats["shards"],
            "shards_reused": self.stats["reused"],
            "shards_recomputed": len(self.checkpoint.recomputed) if self.checkpoint is not None else 0,
            **(
                {"shards_not_trusted": self.checkpoint.recomputed[:20]}
                if self.checkpoint is not None and self.checkpoint.recomputed
                else {}
            ),
            "seconds_per_shard_median": round(sorted(per)[len(per) // 2], 3) if per else None,
            "checkpoint": str(self.checkpoint.folder) if self.checkpoint is not None else None,
        }

    def close(self) -> None:
        """Release what the executor holds (Ray actors)."""


@dataclass
class InProcess(Executor):
    """The default: shards one after the other, here (with a checkpoint, a run can still be resumed)."""


_RAY_WORKER: Any = None


def _ray_worker_class() -> Any:
    """The actor class, made once (Ray must be imported before it can be declared)."""
    global _RAY_WORKER
    if _RAY_WORKER is None:
        import ray

        @ray.remote(max_restarts=-1, max_task_retries=5)
        class _Worker:
            """One per worker process: holds the audited model (loaded once) and runs shards on it."""

            def __init__(self, blob: list[Any], threads: int) -> None:
                import torch

                torch.set_num_threads(threads)
                self.bundle = unpack_bundle(ray.get(blob[0]))  # the reference is wrapped, and kept alive by the driver

            def call(self, fn: ShardFn, payload: Any) -> tuple[Any, float]:
                start = time.perf_counter()
                return fn(self.bundle, payload), time.perf_counter() - start

            def pid(self) -> int:
                return os.getpid()

        _RAY_WORKER = _Worker
    return _RAY_WORKER


@dataclass
class RayExecutor(Executor):
    """Shards on Ray: a local runtime of ``workers`` processes, or the cluster at ``address``."""

    address: str | None = None
    threads: int = 1
    backend: str = "ray"
    _actors: dict[int, list[Any]] = field(default_factory=dict, repr=False)
    _blobs: list[Any] = field(default_factory=list, repr=False)
    _started: bool = field(default=False, repr=False)

    @property
    def parallel(self) -> bool:
        return True

    def _init(self) -> None:
        try:
            import ray
        except ImportError as err:
            raise ConfigError(
                '--workers and --ray-address need Ray: pip install -e ".[distributed]" (or pip install ray)'
            ) from err
        if ray.is_initialized():
            return
        os.environ.setdefault(
            "RAY_BACKEND_LOG_LEVEL", "fatal"
        )  # Ray's C++ core logs to stderr; the user's setting wins
        kwargs: dict[str, Any] = {
            "include_dashboard": False,
            "log_to_driver": False,
            "logging_level": logging.ERROR,
        }
        if self.address:
            _check_reachable(self.address)
            kwargs["address"] = self.address
        else:
            kwargs["num_cpus"] = self.workers
        try:
            ray.init(**kwargs)
        except (ConnectionError, RuntimeError, ValueError) as err:
            raise ConfigError(
                f"could not start or join Ray ({str(err).splitlines()[0][:200]}); check --ray-address"
            ) from err
        self._started = True

    def _check_cluster_size(self, ray: Any) -> None:
        """A joined cluster must have a CPU for each worker, or its actors would wait for ever to be placed."""
        cpus = int(ray.cluster_resources().get("CPU", 0))
        if self.address and cpus and self.workers > cpus:
            raise ConfigError(
                f"--workers {self.workers} is more than the Ray cluster at {self.address} can run: it has {cpus} CPUs; "
                f"pass --workers {cpus} or fewer"
            )

    def actors(self, bundle: ModelBundle) -> list[Any]:
        key = id(bundle)
        if key not in self._actors:
            import ray

            self._init()
            self._check_cluster_size(ray)
            blob = ray.put(pack_bundle(bundle))
            self._blobs.append(blob)  # kept in scope: a restarted actor reloads the model from it
            worker = _ray_worker_class()
            self._actors[key] = [worker.remote([blob], self.threads) for _ in range(self.workers)]
        return self._actors[key]

    def _run(
        self, fn: ShardFn, bundle: ModelBundle | None, payloads: list[Any], positions: list[int]
    ) -> Iterator[tuple[int, Any, float]]:
        import ray

        if bundle is None:
            self._init()
            task = ray.remote(max_retries=5)(_plain_call)
            refs = {task.remote(fn, p): pos for pos, p in zip(positions, payloads)}
            while refs:
                ready, _ = ray.wait(list(refs), num_returns=1)
                value, seconds = ray.get(ready[0])
                yield refs.pop(ready[0]), value, seconds
            return
        actors = self.actors(bundle)
        pending: dict[Any, int] = {}
        queue = list(zip(positions, payloads))
        free = list(actors)
        by_ref: dict[Any, Any] = {}
        while queue or pending:
            while queue and free:
                pos, payload = queue.pop(0)
                actor = free.pop(0)
                ref = actor.call.remote(fn, payload)
                pending[ref] = pos
                by_ref[ref] = actor
            ready, _ = ray.wait(list(pending), num_returns=1)
            ref = ready[0]
            value, seconds = ray.get(ref)
            free.append(by_ref.pop(ref))
            yield pending.pop(ref), value, seconds

    def worker_pids(self, bundle: ModelBundle) -> list[int]:
        import ray

        return ray.get([a.pid.remote() for a in self.actors(bundle)])

    def close(self) -> None:
        import ray

        for actors in self._actors.values():
            for a in actors:
                with contextlib.suppress(Exception):  # an actor that already died
                    ray.kill(a)
        self._actors.clear()
        self._blobs.clear()
        if self._started and ray.is_initialized():
            ray.shutdown()
        self._started = False


def _plain_call(fn: ShardFn, payload: Any) -> tuple[Any, float]:
    start = time.perf_counter()
    return fn(None, payload), time.perf_counter() - start  # type: ignore[arg-type]


def _check_reachable(address: str) -> None:
    """Fail within seconds, not hang, when a cluster address does not answer."""
    import socket

    hostport = address.removeprefix("ray://")
    if address in ("auto", "local") or ":" not in hostport:
        return
    host, _, port = hostport.rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=3):
            pass
    except (OSError, ValueError) as err:
        raise ConfigError(
            f"--ray-address {address} does not answer ({err}); start the cluster (ray start --head) or fix the address"
        ) from err


# -- shipping the model --------------------------------------------------------------------------


def pack_bundle(bundle: ModelBundle) -> bytes:
    """The bundle as bytes a worker can load: a dlaudit checkpoint where the card can rebuild it,
    TorchScript bytes for a script module, else the pickled module (our own object, not a user file)."""
    import pickle

    import torch

    from .bundle import save_model

    buf = io.BytesIO()
    if bundle.card.architecture and not bundle.card.postprocess:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            path = save_model(bundle, Path(tmp) / "m.pt")
            kind, data = "checkpoint", path.read_bytes()
    elif isinstance(bundle.module, torch.jit.ScriptModule):
        torch.jit.save(bundle.module, buf)
        kind, data = "torchscript", buf.getvalue()
    else:
        kind, data = "module", pickle.dumps(bundle.module.cpu())
    return pickle.dumps(
        {"kind": kind, "data": data, "card": bundle.card.to_dict(), "source": bundle.source, "format": bundle.format}
    )


def unpack_bundle(blob: bytes) -> ModelBundle:
    """The inverse of :func:`pack_bundle`, on a worker (CPU unless the worker has a GPU)."""
    import pickle

    import torch

    from .bundle import ModelBundle, _from_checkpoint
    from .card import ModelCard

    spec = pickle.loads(blob)  # bytes this run's driver packed, never a user's file
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if spec["kind"] == "checkpoint":
        obj = torch.load(io.BytesIO(spec["data"]), map_location="cpu", weights_only=True)
        bundle = _from_checkpoint(Path(spec["source"] or "model"), obj, None, torch.device(device))
    elif spec["kind"] == "torchscript":
        module = torch.jit.load(io.BytesIO(spec["data"]), map_location="cpu")  # our own bytes (see pack_bundle)
        bundle = ModelBundle(module, ModelCard.from_dict(spec["card"]), device=device)
    else:
        module = pickle.loads(spec["data"])  # the driver's in-memory module, pickled by pack_bundle
        bundle = ModelBundle(module, ModelCard.from_dict(spec["card"]), device=device)
    bundle.source, bundle.format = spec["source"], spec["format"]
    return bundle


# -- the current executor ------------------------------------------------------------------------

_CURRENT: contextvars.ContextVar[Executor | None] = contextvars.ContextVar("dlaudit_executor", default=None)
_DEFAULT = InProcess()


def current() -> Executor:
    """The executor the analyses should use (in-process unless :func:`using` set one)."""
    return _CURRENT.get() or _DEFAULT


@contextlib.contextmanager
def local() -> Iterator[None]:
    """Inside one shard: the work runs right here (no nested sharding, no checkpoint)."""
    token = _CURRENT.set(InProcess())
    try:
        yield
    finally:
        _CURRENT.reset(token)


@contextlib.contextmanager
def active(executor: Executor) -> Iterator[Executor]:
    """Run a block with ``executor`` as :func:`current` (it stays open for later blocks)."""
    token = _CURRENT.set(executor)
    try:
        yield executor
    finally:
        _CURRENT.reset(token)


@contextlib.contextmanager
def using(executor: Executor) -> Iterator[Executor]:
    """Run a block with ``executor`` as :func:`current`; it is closed afterwards."""
    try:
        with active(executor):
            yield executor
    finally:
        executor.close()


def check_workers(workers: int | None, address: str | None = None) -> None:
    """Refuse a ``--workers`` count that is not a whole number >= 1 or, for a local runtime, more than
    :func:`dlaudit.limits.max_workers` (checked before Ray starts, and before the model loads)."""
    if workers is None:
        return
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ConfigError(f"--workers must be a whole number of at least 1, got {workers!r}")
    local = not (address or os.environ.get("DLAUDIT_RAY_ADDRESS"))
    if local and workers > max_workers():
        raise ConfigError(
            f"--workers {workers} is more than this machine can run: at most {max_workers()} (one per CPU of the "
            f"{cpu_count()} this process may use); pass --workers {max_workers()} or fewer, or --ray-address for a cluster"
        )


def executor_for(
    workers: int | None = None,
    address: str | None = None,
    *,
    checkpoint: str | Path | None = None,
    fingerprint: dict[str, Any] | None = None,
) -> Executor:
    """The executor for ``--workers`` / ``--ray-address`` (or ``DLAUDIT_RAY_ADDRESS``) / ``--checkpoint``."""
    check_workers(workers, address)
    address = address or os.environ.get("DLAUDIT_RAY_ADDRESS") or None
    ckpt = Checkpoint(checkpoint, fingerprint or {}) if checkpoint is not None else None
    if workers is None and address is None:
        return InProcess(checkpoint=ckpt)
    n = workers or 1
    if address is not None:
        _check_reachable(address)  # a clear error now, within seconds, not a hang later
    if address is None:
        try:
            import ray  # noqa: F401
        except ImportError as err:
            raise ConfigError('--workers needs Ray: pip install -e ".[distributed]" (or pip install ray)') from err
    return RayExecutor(workers=n, checkpoint=ckpt, address=address, threads=threads_per_worker(n))
