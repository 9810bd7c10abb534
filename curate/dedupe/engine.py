"""Hashing engines: the same pure function (:func:`curate.dedupe.features.thumbnail`) over shards of
files, on a local process pool (default, no extra dependency) or on Ray Data (``--engine ray``, the
``tryon-bench[distributed]`` extra) for catalogues spread over machines.

Both return, per path, either a :class:`Thumb` or the reason the file could not be read (a string):
an unreadable image is reported and skipped, it never stops the run.
"""

from __future__ import annotations

import collections
import functools
import logging
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import TypeVar

from curate.dedupe.features import Thumb, thumbnail

ENGINES = ("local", "ray")
SHARD = 64  # files per task: large enough to amortise task overhead, small enough to balance 2 workers
T = TypeVar("T")
R = TypeVar("R")


def hash_one(path: str, extra: str | None = None) -> Thumb | str:
    try:
        return thumbnail(path, extra)
    except Exception as exc:  # noqa: BLE001 - a reason, never a crash
        return f"{type(exc).__name__}: {exc}"


def _init_worker() -> None:
    """OpenCV on one thread: in a worker, one process per core already (its own threads would oversubscribe); and
    here before a pool forks, since its thread pool, once this process has used it (a finer look called in process,
    as a notebook or a test does), does not survive a fork: a worker's first parallel OpenCV call then waits for
    threads that are not there, and the pool hangs."""
    import cv2

    cv2.setNumThreads(1)


def _init_pool_worker() -> None:
    from curate.ingest.engine import exit_with_parent

    exit_with_parent()  # a SIGKILLed `curate dedupe` leaves no hashing processes behind
    _init_worker()


def map_local(fn: Callable[[T], R], items: Sequence[T], workers: int, shard: int = SHARD) -> list[R]:
    """``[fn(x) for x in items]`` on a local process pool of ``workers`` (in this process when there is
    one worker or too few items to pay for the pool). ``fn`` must not raise: it returns its failure."""
    import cv2  # noqa: F401 - imported once here, before the fork, so no worker pays for it again

    if workers <= 1 or len(items) < 2 * shard:
        _init_worker()
        return [fn(x) for x in items]
    # shards of at most `shard` items, and at least 4 per worker: the last shard of a worker that drew a
    # slow one (a PNG decodes ~8x slower than a JPEG of its size) leaves the other idle for less time
    chunk = max(1, min(shard, -(-len(items) // (4 * workers))))
    _init_worker()  # before the fork (see there)
    with ProcessPoolExecutor(workers, initializer=_init_pool_worker) as pool:
        return list(pool.map(fn, items, chunksize=chunk))


def _init_state_worker(setup: Callable[..., None] | None, args: tuple) -> None:
    _init_pool_worker()
    if setup is not None:
        setup(*args)


def imap_local(fn: Callable[[T], R], items: Iterable[T], workers: int, setup: Callable[..., None] | None = None,
               setup_args: tuple = (), ahead: int = 4) -> Iterator[R]:
    """``fn(x) for x in items``, in order, on a local pool of ``workers`` processes with at most ``ahead`` items per
    worker in flight, so a long iterable (the candidate blocks of a large catalogue) is never held whole. ``setup``
    (``*setup_args``) runs once in each worker, or once here when there is one worker: the state ``fn`` reads (with
    the fork start method the arguments are inherited, not pickled). ``fn`` must not raise."""
    if workers <= 1:
        _init_worker()
        if setup is not None:
            setup(*setup_args)
        yield from map(fn, items)
        return
    _init_worker()  # before the fork (see there)
    with ProcessPoolExecutor(workers, initializer=_init_state_worker, initargs=(setup, setup_args)) as pool:
        pending: collections.deque = collections.deque()
        for x in items:
            pending.append(pool.submit(fn, x))
            if len(pending) >= ahead * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def _hash_local(paths: Sequence[str], workers: int, extra: str | None = None) -> list[Thumb | str]:
    return map_local(functools.partial(hash_one, extra=extra), paths, workers)


def _hash_batch(batch: dict, extra: str | None = None) -> dict:  # Ray Data map_batches: columns in, columns out
    import numpy as np

    _init_worker()
    out: dict[str, list] = {"i": [], "error": [], **{name: [] for name in Thumb.fields()}}
    empty = Thumb(b"", b"", 0, 0, False, "", 0.0).record()
    for i, path in zip(batch["i"], batch["path"]):
        r = hash_one(str(path), extra)
        out["i"].append(int(i))
        out["error"].append(r if isinstance(r, str) else "")
        for name, value in (empty if isinstance(r, str) else r.record()).items():
            out[name].append(value)
    return {k: np.asarray(v, dtype=object) for k, v in out.items()}


def _hash_ray(paths: Sequence[str], workers: int, extra: str | None = None) -> list[Thumb | str]:
    try:
        import ray
    except ImportError as exc:
        raise RuntimeError("--engine ray needs Ray: pip install 'tryon-bench[distributed]'") from exc
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    started = False
    if not ray.is_initialized():
        # joins a cluster when RAY_ADDRESS is set; otherwise a local Ray with `workers` CPUs
        ray.init(num_cpus=None if os.environ.get("RAY_ADDRESS") else workers, include_dashboard=False,
                 log_to_driver=False, logging_level=logging.WARNING)
        started = True
    ray.data.DataContext.get_current().enable_progress_bars = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    try:
        # one block per shard (Ray Data's default of a block per item queues thousands of tiny tasks), and
        # at least one shard per worker
        shards = max(1, min(len(paths), max(workers, -(-len(paths) // SHARD))))
        per_shard = -(-len(paths) // shards)
        ds = ray.data.from_items([{"i": i, "path": str(p)} for i, p in enumerate(paths)], override_num_blocks=shards)
        rows = ds.map_batches(_hash_batch, fn_kwargs={"extra": extra}, batch_size=per_shard, batch_format="numpy",
                             compute=ray.data.TaskPoolStrategy(size=workers)).take_all()
    finally:
        if started:
            ray.shutdown()
    out: list[Thumb | str] = [""] * len(paths)
    for r in rows:
        out[int(r["i"])] = str(r["error"]) if r["error"] else Thumb.from_record(r)
    return out


def hash_files(paths: Sequence[str], engine: str = "local", workers: int = 1, extra: str | None = None) -> list[Thumb | str]:
    """Thumbnails (or reasons) for ``paths``, in order; ``extra``: also imagehash's phash / dhash."""
    if engine == "local":
        return _hash_local(paths, workers, extra)
    if engine == "ray":
        return _hash_ray(paths, workers, extra)
    raise ValueError(f"unknown engine {engine!r}; valid: {', '.join(ENGINES)}")
