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
import pickle
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

    def reopen(self) -> None:
        """A connection of its own (in a forked process: the parent's is not shared)."""
        self._parent_db = self.db  # kept open: it is the parent's
        self.db = sqlite3.connect(os.path.join(self.folder, "history.sqlite3"))

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

    def deal(self, opp: str, pipeline: str | None) -> None:
        """The deal file's next deal with an id (first pass), and the pipeline its
        history counts in (None: the default one)."""
        if pipeline is not None:
            self.note_pipeline(opp, pipeline)

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
        self.db.commit()  # complete: a connection of its own (reopen) reads it too
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


# Deals per block of the grouped history's sequential file.
GROUPS_PER_BLOCK = 1_000
# The longest deal id the deal file's rows keep (Opportunity import's external_id).
ID_LENGTH = 100


class NotGrouped(Exception):
    """The history file is not grouped by deal in the deal file's order: spool it."""


def _order(opp: str) -> tuple[int, str]:
    """The order the grouped path requires of deal ids, in both files: shorter first,
    then by code point — what "O9" < "O10" exports and fixed-length ids (Salesforce's 18
    characters) sorted as text both follow."""
    return (len(opp), opp)


class GroupedHistory:
    """A history file grouped by deal, in the order of the deal file's ids (the usual
    export order: Salesforce's OpportunityHistory sorted by OpportunityId, a native
    export), read beside the deal file's first pass instead of spooled into an indexed
    database: the stage positions and probabilities come from one deal's events at a
    time, and whether the order holds is checked as it goes (else :class:`NotGrouped`,
    and the caller spools the file). Each deal's events, in time order, are written on
    to a plain sequential file (pickled, GROUPS_PER_BLOCK deals at a time) that the
    batches read back in the same order (:meth:`take`): memory holds a block, not the
    file, and the history file is parsed once.

    ``read()`` gives the file's valid events — (opp, at in microseconds since the epoch,
    stage, amount as text or None, probability or None) in file order, reporting bad
    rows as it likes. The answers are the spool's."""

    def __init__(self, read):
        self.read = read
        self.rows = 0
        self.probs: dict[str, list] = defaultdict(lambda: [0, 0])  # stage → [sum, count]
        self.found: dict[str, dict[str, list[int]]] = {}  # pipeline → stage → [pos, row]
        self.default = ""
        self._events = None  # the reading under way
        self._next = None  # its next event
        self._group = None  # the group read ahead: (order key, opp, events)
        self._last = None  # the order key of the last group read
        self._last_deal = None
        self._names: dict[str, str] = {}  # one object per stage name (pickled once)
        self._file = tempfile.TemporaryFile(prefix="loudou-import-history-")  # noqa: SIM115
        self._block: list = []  # groups to write: (order key, opp, [(at, stage, amount)…])
        self._taken: list = []  # a block read back, reversed (pop from the end)

    def __bool__(self) -> bool:
        return self.rows > 0

    def _pull(self):
        """The next deal's events as (order key, opp, [(at, stage, amount)…] in time
        order, ties in file order, the row among the valid ones before its first, each
        event's row or None when they are in file order: row before + 1, + 2…),
        counting the rows and summing the probabilities; None at the end; NotGrouped
        when the deal does not come after the one before it (its rows apart, or the
        deals out of order)."""
        event = self._next
        if event is None:
            return None
        opp = event[0]
        key = _order(opp)
        if self._last is not None and key <= self._last:
            raise NotGrouped
        self._last = key
        events, events_in, names = [], self._events, self._names
        at, ordered = event[1], True
        rows, probs = self.rows, self.probs
        base = rows
        while event is not None and event[0] == opp:
            rows += 1
            stage = event[2]
            if event[4] is not None:
                entry = probs[stage]
                entry[0] += event[4]
                entry[1] += 1
            if event[1] < at:
                ordered = False
            at = event[1]
            events.append((at, names.setdefault(stage, stage), event[3]))
            event = next(events_in, None)
        self.rows = rows
        rows_of = None
        if not ordered:  # by time, ties in file order (a stable sort)
            order = sorted(range(len(events)), key=[e[0] for e in events].__getitem__)
            rows_of = [base + 1 + i for i in order]
            events = [events[i] for i in order]
        self._next = event
        return key, opp, events, base, rows_of

    def _keep(self, group) -> None:
        """Write ``group``'s events on for the batches (a block at a time)."""
        self._block.append(group[:3])
        if len(self._block) >= GROUPS_PER_BLOCK:
            pickle.dump(self._block, self._file, pickle.HIGHEST_PROTOCOL)
            self._block = []

    # --- beside the deal file's first pass ------------------------------------------

    def start(self, default_pipeline: str) -> None:
        self.default = default_pipeline
        self.found = {default_pipeline: {}}
        self._events = iter(self.read())
        self._next = next(self._events, None)
        self._group = self._pull()

    def deal(self, opp: str, pipeline: str | None) -> None:
        """The deal file's next deal with an id, and the pipeline its history counts in
        (None: the default one — the spool's note_pipeline, which the first pass calls
        only for rows with a stage)."""
        if len(opp) > ID_LENGTH:  # the batches would look it up cut short
            raise NotGrouped
        key = _order(opp)
        if self._last_deal is not None and key <= self._last_deal:
            raise NotGrouped
        self._last_deal = key
        group = self._group
        while group is not None and group[0] < key:  # a deal the deal file does not list
            self._positions(group, self.default)
            group = self._pull()
        if group is not None and group[0] == key:
            self._positions(group, pipeline or self.default)
            self._keep(group)
            group = self._pull()
        self._group = group

    def finish(self) -> None:
        """The deal file is read: the rest of the history counts in the default pipeline."""
        group = self._group
        while group is not None:
            self._positions(group, self.default)
            group = self._pull()
        self._group = self._events = self._next = None
        if self._block:
            pickle.dump(self._block, self._file, pickle.HIGHEST_PROTOCOL)
            self._block = []
        self._file.seek(0)

    def _positions(self, group, pipeline: str) -> None:
        stages = self.found.get(pipeline)
        if stages is None:
            stages = self.found[pipeline] = {}
        _key, _opp, events, base, rows_of = group
        for position, (_at, stage, _amount) in enumerate(events):
            row = base + 1 + position if rows_of is None else rows_of[position]
            entry = stages.get(stage)
            if entry is None:
                stages[stage] = [position, row]
            else:
                if position < entry[0]:
                    entry[0] = position
                if row < entry[1]:
                    entry[1] = row

    def stage_positions(self, default_pipeline: str) -> list[tuple[str, str, int, int]]:
        """As :meth:`HistorySpool.stage_positions` (after :meth:`finish`)."""
        return sorted(
            ((pipeline, stage, position, row) for pipeline, stages in self.found.items()
             for stage, (position, row) in stages.items()),
            key=lambda entry: entry[3],
        )  # fmt: skip

    # --- beside the batches -----------------------------------------------------------

    def _next_kept(self):
        if not self._taken:
            try:
                block = pickle.load(self._file)
            except EOFError:
                return None
            block.reverse()
            self._taken = block
        return self._taken.pop()

    def take(self, opps) -> dict[str, list[tuple[int, str, str | None]]]:
        """The events of the deals ``opps`` (a batch, in the deal file's order), each
        deal's in time order; the kept events are read on as far as the batch's last
        deal (only the deal file's deals were kept, each once)."""
        wanted = {o for o in opps if o}
        out: dict[str, list] = {}
        if not wanted:
            return out
        last = max(map(_order, wanted))
        group = self._group if self._group is not None else self._next_kept()
        while group is not None and group[0] <= last:
            if group[1] in wanted:
                out[group[1]] = group[2]
            group = self._next_kept()
        self._group = group
        return out

    def close(self) -> None:
        self._events = self._group = self._next = None
        self._block, self._taken = [], []
        self._file.close()
