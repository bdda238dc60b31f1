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
from itertools import chain

FLUSH = 20_000
# Rows per INSERT statement into the spool: one statement per row cost twice as much.
ROWS_PER_STATEMENT = 200


class HistorySpool:
    """Events (opportunity external id, time in microseconds since the epoch, stage name,
    amount) on disk."""

    def __init__(self):
        self.folder = tempfile.mkdtemp(prefix="loudou-import-history-")
        self.db = sqlite3.connect(os.path.join(self.folder, "history.sqlite3"))
        self.db.execute("PRAGMA journal_mode = OFF")
        self.db.execute("PRAGMA synchronous = OFF")
        self.db.execute("PRAGMA cache_size = -16384")  # 16 MiB: memory stays flat
        self.db.execute(
            "CREATE TABLE h (opp TEXT NOT NULL, at INTEGER NOT NULL, stage TEXT NOT NULL, "
            "amount TEXT)"
        )
        # The deals' pipelines, the first noted for a deal winning (indexed at the end).
        self.db.execute("CREATE TABLE d (opp TEXT NOT NULL, pipeline TEXT NOT NULL)")
        self.deals: list[tuple] = []
        self.rows = 0
        self.probs: dict[str, list] = defaultdict(lambda: [0, 0])  # stage → [sum, count]

    def __bool__(self) -> bool:
        return self.rows > 0

    def extend(self, events: list[tuple], probabilities: list[tuple] = ()) -> None:
        """Add many events at once — (opp, at in microseconds since the epoch, stage,
        amount as text or None) tuples, written a block per statement — and the
        (stage, probability) pairs the same rows give (the stages' mean probability)."""
        if events:
            self._insert("h", 4, events)
            self.rows += len(events)
        probs = self.probs
        for stage, probability in probabilities:
            entry = probs[stage]
            entry[0] += probability
            entry[1] += 1

    def _flush(self) -> None:
        if self.deals:
            self._insert("d", 2, self.deals)
            self.deals = []

    def _insert(self, table: str, width: int, rows: list[tuple]) -> None:
        """INSERT ``rows`` in order, ROWS_PER_STATEMENT to a statement."""
        row_sql = "(" + ", ".join("?" * width) + ")"
        per = ROWS_PER_STATEMENT
        full = len(rows) // per * per
        if full:
            flat = list(chain.from_iterable(rows[:full]))
            step = per * width
            self.db.executemany(
                f"INSERT INTO {table} VALUES " + ", ".join([row_sql] * per),
                [flat[i : i + step] for i in range(0, len(flat), step)],
            )
        if full < len(rows):
            rest = rows[full:]
            self.db.execute(
                f"INSERT INTO {table} VALUES " + ", ".join([row_sql] * len(rest)),
                list(chain.from_iterable(rest)),
            )

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
        every stage the history names, the deals' pipelines from :meth:`note_pipeline`
        (``default_pipeline`` for a deal the deal file does not list), in the order of
        the stages' first rows.

        One pass over the events in deal and time order, merged with the deals' pipelines
        in deal order (both sorted the same way: SQLite compares text as UTF-8 bytes, which
        is code point order, as Python compares strings)."""
        self._flush()
        self.db.execute("CREATE INDEX IF NOT EXISTS d_opp ON d (opp)")
        pipelines = self.db.execute("SELECT opp, pipeline FROM d ORDER BY opp, rowid")
        deal = next(pipelines, None)
        found: dict[str, dict[str, list[int]]] = {}  # pipeline → stage → [position, row]
        current, position, stages = None, 0, found.setdefault(default_pipeline, {})
        for opp, stage, rid in self.db.execute(
            "SELECT opp, stage, rowid FROM h ORDER BY opp, at, rowid"
        ):
            if opp != current:
                current, position = opp, 0
                while deal is not None and deal[0] < opp:
                    deal = next(pipelines, None)
                if deal is not None and deal[0] == opp:
                    stages = found.setdefault(deal[1], {})
                    while deal is not None and deal[0] == opp:  # the first noted wins
                        deal = next(pipelines, None)
                else:
                    stages = found[default_pipeline]
            entry = stages.get(stage)
            if entry is None:
                stages[stage] = [position, rid]
            else:
                if position < entry[0]:
                    entry[0] = position
                if rid < entry[1]:
                    entry[1] = rid
            position += 1
        return sorted(
            ((pipeline, stage, position, rid) for pipeline, stages in found.items()
             for stage, (position, rid) in stages.items()),
            key=lambda row: row[3],
        )  # fmt: skip

    def take(self, opps) -> dict[str, list[tuple[int, str, str | None]]]:
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
