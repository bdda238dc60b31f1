"""A stage history file held on disk while its opportunities are imported.

A history file (Salesforce OpportunityHistory, native history.csv) lists the stage
changes of every deal in any order; the deal file lists the deals. Holding the whole
history in memory grew the import by ~150 MB per 400,000 rows, so it is spooled into a
temporary SQLite file (stdlib ``sqlite3``, its own connection, never the project's
database), indexed by deal, and each batch of deals takes its own events from it. The
spool also answers what the pipeline builder needs: where each stage comes in the deals'
own sequences, and the mean probability the file gives each stage.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
from collections import defaultdict

FLUSH = 20_000


class HistorySpool:
    """Events (opportunity external id, POSIX time, stage name, amount) on disk."""

    def __init__(self):
        self.folder = tempfile.mkdtemp(prefix="loudou-import-history-")
        self.db = sqlite3.connect(os.path.join(self.folder, "history.sqlite3"))
        self.db.execute("PRAGMA journal_mode = OFF")
        self.db.execute("PRAGMA synchronous = OFF")
        self.db.execute("PRAGMA cache_size = -16384")  # 16 MiB: memory stays flat
        self.db.execute(
            "CREATE TABLE h (opp TEXT NOT NULL, at REAL NOT NULL, stage TEXT NOT NULL, amount TEXT)"
        )
        self.db.execute("CREATE TABLE d (opp TEXT PRIMARY KEY, pipeline TEXT NOT NULL)")
        self.buffer: list[tuple] = []
        self.deals: list[tuple] = []
        self.rows = 0
        self.probs: dict[str, list] = defaultdict(lambda: [0, 0])  # stage → [sum, count]

    def __bool__(self) -> bool:
        return self.rows > 0

    def add(self, opp: str, at: float, stage: str, amount, probability=None) -> None:
        self.buffer.append((opp, at, stage, None if amount is None else str(amount)))
        self.rows += 1
        if probability is not None:
            entry = self.probs[stage]
            entry[0] += probability
            entry[1] += 1
        if len(self.buffer) >= FLUSH:
            self._flush()

    def _flush(self) -> None:
        if self.buffer:
            self.db.executemany("INSERT INTO h VALUES (?, ?, ?, ?)", self.buffer)
            self.buffer = []
        if self.deals:
            self.db.executemany("INSERT OR IGNORE INTO d VALUES (?, ?)", self.deals)
            self.deals = []

    def finish(self) -> None:
        """All events are in: index them by deal and time."""
        self._flush()
        self.db.execute("CREATE INDEX h_opp ON h (opp, at)")

    def note_pipeline(self, opp: str, pipeline: str) -> None:
        """The pipeline the deal file puts ``opp`` in (first pass)."""
        self.deals.append((opp, pipeline))
        if len(self.deals) >= FLUSH:
            self._flush()

    def stage_positions(self, default_pipeline: str) -> list[tuple[str, str, int, int]]:
        """(pipeline, stage, earliest position in a deal's own sequence, first row) for
        every stage the history names, the deals' pipelines from :meth:`note_pipeline`."""
        self._flush()
        return self.db.execute(
            """
            SELECT COALESCE(d.pipeline, ?), x.stage, MIN(x.pos), MIN(x.rid)
            FROM (SELECT opp, stage, rowid AS rid,
                         ROW_NUMBER() OVER (PARTITION BY opp ORDER BY at, rowid) - 1 AS pos
                  FROM h) AS x
            LEFT JOIN d ON d.opp = x.opp
            GROUP BY 1, 2
            ORDER BY 4
            """,
            [default_pipeline],
        ).fetchall()

    def take(self, opps) -> dict[str, list[tuple[float, str, str | None]]]:
        """The events of the deals ``opps``, each deal's in time order."""
        out: dict[str, list] = defaultdict(list)
        keys = [o for o in set(opps) if o]
        for start in range(0, len(keys), 5_000):
            chunk = keys[start : start + 5_000]
            marks = ", ".join("?" * len(chunk))
            for opp, at, stage, amount in self.db.execute(
                f"SELECT opp, at, stage, amount FROM h WHERE opp IN ({marks}) "
                "ORDER BY opp, at, rowid",
                chunk,
            ):
                out[opp].append((at, stage, amount))
        return out

    def close(self) -> None:
        self.db.close()
        shutil.rmtree(self.folder, ignore_errors=True)
