"""Download a table as CSV or Excel: headers + rows → HttpResponse.

Generic on purpose: any page that shows a table can offer ``?format=csv`` and
``?format=xlsx`` with one call::

    response = exports.table_response(fmt, "funnel", headers, rows)

Cells are plain Python values and their type decides how they are written: ``str``,
``int``, ``Decimal`` (money, two decimals), ``float``, :class:`Percent` (a fraction shown
as a percentage), ``bool``, ``date``/``datetime`` and ``None`` (an empty cell).

CSV is UTF-8 with a byte-order mark, so Excel opens Chinese text correctly. Text that
starts like a formula (``=``, ``+``, ``-``, ``@``) is written as text in both formats, so
a deal named ``=HYPERLINK(...)`` cannot run in the reader's spreadsheet.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from decimal import Decimal

from django.http import HttpResponse
from django.utils import timezone
from django.utils.translation import gettext as _

FORMATS = ("csv", "xlsx")
CSV_TYPE = "text/csv; charset=utf-8"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class Percent(float):
    """A fraction (0.547) to be shown as a percentage (54.7%)."""


def filename(name: str, extension: str, day: date | None = None) -> str:
    """``funnel-2026-11-22.csv``: the table's name and today's date in the company's zone."""
    day = day or timezone.localdate()
    return f"{name}-{day.isoformat()}.{extension}"


def table_response(
    fmt: str, name: str, headers: Sequence[str], rows: Iterable[Sequence]
) -> HttpResponse:
    """The table as a download in ``fmt`` (``csv`` or ``xlsx``); ValueError otherwise."""
    if fmt == "csv":
        return csv_response(name, headers, rows)
    if fmt == "xlsx":
        return xlsx_response(name, headers, rows)
    raise ValueError(f"unknown export format {fmt!r}")


def _download(content: bytes, content_type: str, name: str) -> HttpResponse:
    response = HttpResponse(content, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


def _safe_text(text: str) -> str:
    return "'" + text if text.startswith(_FORMULA_START) else text


def csv_cell(value) -> str:
    """How one cell is written in CSV."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if isinstance(value, Percent):
        return f"{float(value) * 100:.1f}%"
    if isinstance(value, Decimal):
        return str(value.quantize(Decimal("0.01")))
    if isinstance(value, datetime):
        local = timezone.localtime(value) if timezone.is_aware(value) else value
        return local.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, int | float):
        return str(value)
    return _safe_text(str(value))


def csv_response(name: str, headers: Sequence[str], rows: Iterable[Sequence]) -> HttpResponse:
    """CSV in UTF-8 with a BOM (Excel reads the BOM and shows Chinese correctly)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([_safe_text(str(h)) for h in headers])
    for row in rows:
        writer.writerow([csv_cell(value) for value in row])
    return _download(buffer.getvalue().encode("utf-8-sig"), CSV_TYPE, filename(name, "csv"))


def xlsx_response(name: str, headers: Sequence[str], rows: Iterable[Sequence]) -> HttpResponse:
    """An .xlsx workbook with one sheet: bold frozen header, numbers as numbers."""
    import xlsxwriter

    output = io.BytesIO()
    workbook = xlsxwriter.Workbook(
        output, {"in_memory": True, "strings_to_formulas": False, "strings_to_urls": False}
    )
    sheet = workbook.add_worksheet(name[:31])
    formats = {
        "header": workbook.add_format({"bold": True, "bottom": 1}),
        "money": workbook.add_format({"num_format": "#,##0.00"}),
        "percent": workbook.add_format({"num_format": "0.0%"}),
        "date": workbook.add_format({"num_format": "yyyy-mm-dd"}),
        "datetime": workbook.add_format({"num_format": "yyyy-mm-dd hh:mm"}),
    }
    widths = [len(str(h)) * (2 if not str(h).isascii() else 1) + 2 for h in headers]
    for col, header in enumerate(headers):
        sheet.write_string(0, col, str(header), formats["header"])
    for r, row in enumerate(rows, start=1):
        for col, value in enumerate(row):
            width = _write_cell(sheet, r, col, value, formats)
            if col < len(widths):
                widths[col] = max(widths[col], width)
            else:
                widths.append(width)
    for col, width in enumerate(widths):
        sheet.set_column(col, col, min(max(width, 8), 60))
    sheet.freeze_panes(1, 0)
    workbook.close()
    return _download(output.getvalue(), XLSX_TYPE, filename(name, "xlsx"))


def _write_cell(sheet, row: int, col: int, value, formats) -> int:
    """Write one cell with the format its type asks for; return its display width."""
    if value is None:
        sheet.write_blank(row, col, None)
        return 0
    if isinstance(value, bool):
        text = _("yes") if value else _("no")
        sheet.write_string(row, col, text)
        return len(text) * 2
    if isinstance(value, Percent):
        sheet.write_number(row, col, float(value), formats["percent"])
        return 7
    if isinstance(value, Decimal):
        sheet.write_number(row, col, float(value), formats["money"])
        return len(f"{value:,.2f}") + 1
    if isinstance(value, datetime):
        naive = (
            timezone.localtime(value).replace(tzinfo=None) if timezone.is_aware(value) else value
        )
        sheet.write_datetime(row, col, naive, formats["datetime"])
        return 16
    if isinstance(value, date):
        sheet.write_datetime(row, col, value, formats["date"])
        return 10
    if isinstance(value, int | float):
        sheet.write_number(row, col, value)
        return len(str(value)) + 1
    text = str(value)
    sheet.write_string(row, col, text)
    return len(text) * (1 if text.isascii() else 2)
