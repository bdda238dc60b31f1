"""Preparing an import's batches in a second process while this one writes them.

Most of a big import's time is Python work that needs no database: reading the file's
cells, parsing them, rebuilding each deal's stage history into rows. :class:`Ahead` runs
that work (``produce``, a generator) in a child process forked from the importer once
its set-up is done — the child starts with the importer's state (pipelines, memos, the
owners already resolved) and never touches the database — and hands each prepared
batch back over a pipe, pickled, while the parent looks up duplicates and writes the
batch before. The pipe holds about one batch (_widen): the child waits when it is
further ahead, so memory stays flat.

Only where ``fork`` exists and the machine has a second core (:func:`possible`);
elsewhere the importer prepares its batches itself, with the same results.
"""

from __future__ import annotations

import gc
import logging
import multiprocessing
import os
import pickle
import traceback

from django.conf import settings
from django.db import connections

logger = logging.getLogger(__name__)
_ITEM, _END, _FAILED = 0, 1, 2
PIPE_BYTES = 1 << 20  # the pipe's size where the system allows it (_widen)
_inherited: list = []  # the parent's database connections, kept alive (never closed here)


class PreparingFailed(RuntimeError):
    """The preparing process failed or stopped; the message carries its traceback."""


def possible() -> bool:
    """Whether a forked process may help here: the system forks, the machine has a second
    core, and ``LOUDOU_IMPORT_AHEAD`` is not off. On both databases: with PostgreSQL on
    the same machine the server needs a core too, but since a first import builds its
    indexes at the end (bulk.deferred_indexes) the server's share is small enough that
    the child pays there as well (docs/benchmarks.md, "Eleventh pass")."""
    return (
        settings.LOUDOU_IMPORT_AHEAD
        and "fork" in multiprocessing.get_all_start_methods()
        and (os.cpu_count() or 1) > 1
    )


def _widen(pipe) -> None:
    """Make the pipe hold a whole prepared batch (Linux: a deal import's is ~0.5 MB): the
    child then writes it and goes on to the next while the importer is still busy with
    the one before, instead of waiting until the importer has read all of it. Where the
    system refuses (above its /proc/sys/fs/pipe-max-size), the pipe stays as it is."""
    import fcntl

    setsize = getattr(fcntl, "F_SETPIPE_SZ", None)
    if setsize is not None:
        try:
            fcntl.fcntl(pipe.fileno(), setsize, PIPE_BYTES)
        except OSError:
            pass


def _refuse(*args, **kwargs):
    raise PreparingFailed("an import's preparing process may not use the database")


def _forbid_database() -> None:
    """In the child: any use of the database fails loudly. The parent's connections are
    kept referenced, not closed: closing one would end the parent's session (PostgreSQL
    sends a goodbye on the shared socket)."""
    for conn in connections.all(initialized_only=True):
        _inherited.append(conn.connection)
        conn.ensure_connection = conn.connect = _refuse


def _child(produce, start, pipe) -> None:
    # What the child starts with is the importer's state, none of it garbage: the cycle
    # collector leaves it alone (engine.fewer_collections: the parent's own is already)
    # — a fifth of the child's CPU went to scanning it.
    gc.freeze()
    _forbid_database()
    try:
        if start is not None:
            start()
        for item in produce():
            pipe.send_bytes(pickle.dumps((_ITEM, item), pickle.HIGHEST_PROTOCOL))
        pipe.send_bytes(pickle.dumps((_END, None)))
    except (BrokenPipeError, ConnectionResetError):  # the parent stopped first
        return
    except BaseException as error:  # noqa: BLE001 -- handed to the parent, which raises it
        text = traceback.format_exc()
        try:
            payload = pickle.dumps((_FAILED, (error, text)), pickle.HIGHEST_PROTOCOL)
            pickle.loads(payload)  # noqa: S301 -- our own bytes
        except Exception:  # noqa: BLE001 -- an exception that does not pickle: its text
            payload = pickle.dumps((_FAILED, (None, text)))
        try:
            pipe.send_bytes(payload)
        except OSError:
            pass
    finally:
        pipe.close()


def start(produce, start=None) -> Ahead | None:
    """An :class:`Ahead` of ``produce``, or None when no process can be forked (memory,
    process limits): the caller then does the work itself."""
    try:
        return Ahead(produce, start)
    except OSError as error:
        logger.warning("import work done in one process: no second one (%s)", error)
        return None


class Ahead:
    """Iterate over what ``produce()`` yields, produced in a forked child process (which
    first calls ``start()``, e.g. to reopen a file of its own). Close it (or leave the
    ``with`` block) to stop the child."""

    def __init__(self, produce, start=None):
        context = multiprocessing.get_context("fork")
        receive, send = context.Pipe(duplex=False)
        _widen(send)
        self.process = context.Process(
            target=_child, args=(produce, start, send), name="loudou-import-prepare", daemon=True
        )
        self.process.start()
        send.close()  # the child's end: the parent reads EOF when the child is gone
        self.receive = receive

    def __iter__(self):
        while True:
            try:
                kind, value = pickle.loads(self.receive.recv_bytes())  # noqa: S301 -- our child's bytes
            except EOFError:
                self.process.join(5)
                raise PreparingFailed(
                    f"the import's preparing process stopped (exit code {self.process.exitcode})"
                ) from None
            if kind == _ITEM:
                yield value
            elif kind == _END:
                return
            else:
                error, text = value
                if error is None:
                    raise PreparingFailed(text)
                raise error from PreparingFailed(text)

    def close(self) -> None:
        self.receive.close()
        if self.process.is_alive():
            self.process.kill()
        self.process.join()
        self.process.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()
