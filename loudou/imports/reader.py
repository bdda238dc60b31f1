"""Reading tables from CSV and spreadsheet files, one row at a time.

CSV is streamed (the file is never loaded whole); its encoding is detected from the
first bytes: UTF-8 with or without BOM, else GB18030 (a superset of GBK, what Chinese
Excel writes). xlsx/xls/ods go through python-calamine, which holds one sheet's cells in
its compact native form while Python sees one row at a time.

The header row need not be the first: templates from Chinese CRMs put a merged note row
("注意事项…") above it, and mark required columns with ``*``. The header is the row
among the first few that names the most known columns (or, when none is known, the first
row as wide as the table). Row numbers are those the user sees in Excel (1-based,
counting the note and header rows).
"""

from __future__ import annotations

import codecs
import csv
import io
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from django.utils.translation import gettext as _

SNIFF_BYTES = 64 * 1024
HEADER_SCAN_ROWS = 10
SPREADSHEET_SUFFIXES = {".xlsx", ".xlsm", ".xls", ".xlsb", ".ods"}
csv.field_size_limit(16 * 1024 * 1024)


class UnreadableFile(Exception):
    """The file is not a table we can read; the message says why."""


def header_key(name) -> str:
    """A header as compared with the layouts: NFKC (full-width folded), required-marks
    (``*``) and surrounding spaces removed, lower case. "*客户名称" → "客户名称"."""
    if name is None:
        return ""
    text = unicodedata.normalize("NFKC", str(name)).replace("\ufeff", "")
    text = " ".join(text.split())
    return text.strip("*").strip().lower()


def detect_encoding(sample: bytes) -> str:
    """The text encoding of a CSV from its first bytes."""
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:  # final=False: a character cut at the end of the sample is not an error
        decoder.decode(sample, final=False)
        return "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        codecs.getincrementaldecoder("gb18030")().decode(sample, final=False)
        return "gb18030"
    except UnicodeDecodeError:
        return "latin-1"  # reads anything; the values will show what went wrong


def _sniff_delimiter(line: str) -> str:
    counts = {d: line.count(d) for d in (",", ";", "\t", "|")}
    best = max(counts, key=counts.get)
    return best if counts[best] else ","


@dataclass
class Table:
    """A table being read: its header names (as written, with ``*`` kept out), the
    Excel row number of the header, and an iterator of (row number, cells)."""

    headers: list[str]
    header_row: int
    rows: Iterator[tuple[int, list]]
    encoding: str = ""
    sheet: str = ""
    keys: list[str] = field(default_factory=list)
    required: set[int] = field(default_factory=set)
    reopen_with: Callable[[], Table] | None = field(default=None, repr=False)

    def reopen(self) -> Table:
        """The same table read again from its first row: a CSV file is opened afresh; a
        workbook's sheet, which calamine holds already, is not loaded a second time (for
        a 100,000-row sheet that load is ~2 s)."""
        if self.reopen_with is None:
            raise UnreadableFile(_("This table cannot be read again."))
        return self.reopen_with()

    def __post_init__(self):
        self.keys = [header_key(h) for h in self.headers]
        self.required = {i for i, h in enumerate(self.headers) if str(h or "").strip()[:1]
                         in {"*", "＊"}}  # fmt: skip
        self.headers = [str(h or "").strip().lstrip("*＊").strip() for h in self.headers]


def _pick_header(rows: list[list], known: set[str]) -> int:
    """The index of the header row among the first rows read."""
    if not rows:
        return 0
    scores = [sum(1 for cell in row if header_key(cell) in known) for row in rows]
    best = max(range(len(rows)), key=lambda i: (scores[i], -i))
    if scores[best] > 0:
        return best
    width = max(sum(1 for c in row if str(c or "").strip()) for row in rows)
    for i, row in enumerate(rows):
        if sum(1 for c in row if str(c or "").strip()) >= max(2, width // 2 + 1):
            return i
    return 0


def _framed(source: Iterable[list], known: set[str], **extra) -> Table:
    """Find the header in the first rows of ``source`` and frame the rest as a Table."""
    iterator = iter(source)
    head: list[list] = []
    for row in iterator:
        head.append(row)
        if len(head) >= HEADER_SCAN_ROWS:
            break
    index = _pick_header(head, known)
    headers = list(head[index]) if head else []
    width = len(headers)

    def padded():
        # One generator (not two stacked): a million rows pass through here.
        number = index + 1
        for source in (head[index + 1 :], iterator):
            for row in source:
                number += 1
                if not any(row) and all(c in (None, "") for c in row):
                    continue  # blank lines are not rows (a row of zeros is one)
                if len(row) < width:
                    row = list(row) + [""] * (width - len(row))
                yield number, row

    return Table(headers=headers, header_row=index + 1, rows=padded(), **extra)


def open_table(path, *, known: Iterable[str] = (), sheet: str | int | None = None) -> Table:
    """Open a CSV or spreadsheet file for reading row by row."""
    path = Path(path)
    known = set(known)
    if path.suffix.lower() in SPREADSHEET_SUFFIXES:
        return _open_spreadsheet(path, known, sheet)
    with open(path, "rb") as raw:
        sample = raw.read(SNIFF_BYTES)
    if sample.startswith(b"PK\x03\x04") or sample.startswith(b"\xd0\xcf\x11\xe0"):
        return _open_spreadsheet(path, known, sheet)  # a workbook with a .csv name
    encoding = detect_encoding(sample)
    first_line = sample.decode(encoding, errors="ignore").splitlines()[:1]
    delimiter = _sniff_delimiter(first_line[0] if first_line else "")
    handle = open(path, encoding=encoding, newline="", errors="replace")  # noqa: SIM115

    def lines():
        with handle:
            yield from csv.reader(handle, delimiter=delimiter)

    table = _framed(lines(), known, encoding=encoding)
    table.reopen_with = lambda: open_table(path, known=known, sheet=sheet)
    return table


def is_workbook(path) -> bool:
    path = Path(path)
    if path.suffix.lower() in SPREADSHEET_SUFFIXES:
        return True
    with open(path, "rb") as raw:
        return raw.read(4) in (b"PK\x03\x04", b"\xd0\xcf\x11\xe0")


def sheet_names(path) -> list[str]:
    """The names of a workbook's sheets (a CSV file has none)."""
    if not is_workbook(path):
        return []
    from python_calamine import CalamineWorkbook

    try:
        return list(CalamineWorkbook.from_path(str(path)).sheet_names)
    except Exception as error:  # calamine raises its own types for every kind of damage
        raise UnreadableFile(_("The file is not a readable spreadsheet: %s") % error) from None


def _open_spreadsheet(path: Path, known: set[str], sheet) -> Table:
    from python_calamine import CalamineWorkbook

    try:
        book = CalamineWorkbook.from_path(str(path))
        if isinstance(sheet, str):
            if sheet not in book.sheet_names:
                raise UnreadableFile(_("The workbook has no sheet “%s”.") % sheet)
            data = book.get_sheet_by_name(sheet)
        else:
            data = book.get_sheet_by_index(sheet or 0)
    except UnreadableFile:
        raise
    except Exception as error:  # calamine raises its own types for every kind of damage
        raise UnreadableFile(_("The file is not a readable spreadsheet: %s") % error) from None
    return _framed_sheet(data, known)


def _framed_sheet(data, known: set[str]) -> Table:
    """A Table over a sheet calamine has loaded (``reopen`` reads the same sheet again)."""
    # Rows above the sheet's first used row are not in the range calamine returns.
    offset = data.start[0] if data.start else 0

    table = _framed(data.iter_rows(), known, sheet=data.name)
    table.header_row += offset
    table.rows = ((number + offset, row) for number, row in table.rows)
    table.reopen_with = lambda: _framed_sheet(data, known)
    return table


def read_csv_text(text: str, **kwargs) -> Table:
    """A table from CSV text (tests and the API's small uploads)."""
    reader = csv.reader(io.StringIO(text))
    return _framed(reader, set(kwargs.get("known", ())))
