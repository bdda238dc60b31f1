"""Reading imported files: encodings, header rows, Excel quirks and cell values."""

from datetime import date, datetime
from decimal import Decimal

import pytest
import xlsxwriter

from loudou.imports import layouts
from loudou.imports.reader import detect_encoding, header_key, open_table
from loudou.imports.values import (
    BadValue,
    parse_amount,
    parse_bool,
    parse_date,
    parse_datetime_naive,
    parse_percent,
)

ROW = ["上海恒信科技有限公司", "王经理", "a@b.cn", "展会", "13812345678", "", "", "制造"]
ZH_LEADS = ["*线索名称", "*负责人", "邮箱", "线索来源", "手机", "电话", "地址", "客户行业"]


def write_csv(path, rows, encoding="utf-8"):
    text = "\r\n".join(",".join(row) for row in rows) + "\r\n"
    path.write_bytes(text.encode(encoding))
    return path


def write_xlsx(path, rows, *, merged_note=None, date_cells=()):
    """An xlsx built like a Chinese CRM template: an optional merged note row above the
    header; ``date_cells`` are (row, col, serial) written as plain numbers."""
    book = xlsxwriter.Workbook(str(path))
    sheet = book.add_worksheet("Sheet1")
    offset = 0
    if merged_note:
        sheet.merge_range(0, 0, 0, len(rows[0]) - 1, merged_note)
        offset = 1
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            sheet.write(r + offset, c, value)
    for r, c, serial in date_cells:
        sheet.write_number(r + offset, c, serial)
    book.close()
    return path


@pytest.mark.parametrize(
    ("encoding", "expected"),
    [("utf-8", "utf-8"), ("utf-8-sig", "utf-8-sig"), ("gbk", "gb18030"), ("gb18030", "gb18030")],
)
def test_csv_encodings_are_detected(tmp_path, encoding, expected):
    """UTF-8, UTF-8 with BOM and GBK/GB18030 files (Chinese Excel's "CSV") read the same
    Chinese headers and values."""
    path = write_csv(
        tmp_path / "leads.csv",
        [
            ZH_LEADS,
            ["上海恒信科技有限公司", "王经理", "a@b.cn", "展会", "13812345678", "", "", "制造"],
        ],
        encoding,
    )
    table = open_table(path, known=layouts.known_headers("leads"))
    assert table.encoding == expected
    assert table.headers[0] == "线索名称"
    rows = list(table.rows)
    assert rows == [
        (2, ["上海恒信科技有限公司", "王经理", "a@b.cn", "展会", "13812345678", "", "", "制造"])
    ]


def test_gbk_is_told_apart_from_utf8_on_a_cut_character():
    """A UTF-8 sample cut in the middle of a character is still UTF-8, not GBK."""
    data = "客户名称".encode()
    assert detect_encoding(data[:-1]) == "utf-8"
    assert detect_encoding("客户名称".encode("gbk")) == "gb18030"


def test_note_row_and_star_headers_in_csv(tmp_path):
    """A note row above the header is skipped; ``*`` marks are removed from names and
    remembered as required; row numbers are Excel's (note = 1, header = 2, data = 3)."""
    path = write_csv(
        tmp_path / "t.csv",
        [["注意事项：带*的为必填项"] + [""] * 7, ZH_LEADS, ["张三", "", "", "", "138", "", "", ""]],
    )
    table = open_table(path, known=layouts.known_headers("leads"))
    assert table.header_row == 2
    assert table.headers[:2] == ["线索名称", "负责人"]
    assert table.required == {0, 1}
    assert [n for n, _row in table.rows] == [3]


def test_xlsx_with_merged_note_row_and_merged_header_cells(tmp_path):
    """An xlsx template with a merged note row: the header is row 2, the data rows keep
    their Excel numbers, and a merged (empty) header cell maps to nothing."""
    path = tmp_path / "t.xlsx"
    book = xlsxwriter.Workbook(str(path))
    sheet = book.add_worksheet()
    sheet.merge_range(0, 0, 0, 3, "注意事项：1. 带*为必填")
    sheet.merge_range(1, 2, 1, 3, "手机")  # a header merged over two columns
    sheet.write_row(1, 0, ["*线索名称", "*负责人"])
    sheet.write_row(2, 0, ["李四", "王经理", "13900000000", "备用"])
    book.close()
    table = open_table(path, known=layouts.known_headers("leads"))
    assert table.header_row == 2
    assert table.keys == ["线索名称", "负责人", "手机", ""]
    mapping = layouts.detect("leads", table.keys)
    assert mapping.columns == {0: "name", 1: "owner", 2: "mobile"}
    assert list(table.rows) == [(3, ["李四", "王经理", "13900000000", "备用"])]


def test_header_key_folds_width_case_and_marks():
    assert header_key(" *ＳｔａｇｅＮａｍｅ ") == "stagename"
    assert header_key("＊客户名称") == "客户名称"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (45352, date(2024, 3, 1)),
        (45352.5, date(2024, 3, 1)),
        ("45352", date(2024, 3, 1)),
        ("2024-03-05", date(2024, 3, 5)),
        ("2024-03-05T10:22:33Z", date(2024, 3, 5)),
        ("3/5/2024", date(2024, 3, 5)),
        ("31/12/2024", date(2024, 12, 31)),
        ("2024/3/5", date(2024, 3, 5)),
        ("2024.3.5", date(2024, 3, 5)),
        ("2024年3月5日", date(2024, 3, 5)),
        ("2024年3月5日 14:30", date(2024, 3, 5)),
        (datetime(2024, 3, 5, 9, 0), date(2024, 3, 5)),  # noqa: DTZ001 (an Excel cell)
        ("", None),
    ],
)
def test_dates(raw, expected):
    """Excel serials, ISO, M/D/YYYY (day-first when the first number cannot be a month),
    YYYY/M/D and 年月日 dates all parse."""
    assert parse_date(raw) == expected


def test_datetime_with_time_and_pm():
    """Times of day, with AM/PM, and the fraction of an Excel serial (naive: the file's
    wall clock; the company's zone is applied later)."""
    assert parse_datetime_naive("3/5/2024 2:05 PM") == datetime(2024, 3, 5, 14, 5)  # noqa: DTZ001
    assert parse_datetime_naive(45352.75) == datetime(2024, 3, 1, 18, 0)  # noqa: DTZ001


@pytest.mark.parametrize("raw", ["2024-13-01", "13/13/2024", "next week", "2024年2月30日", True])
def test_bad_dates_say_why(raw):
    with pytest.raises(BadValue) as info:
        parse_date(raw)
    assert info.value.reason


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1,234.50", Decimal("1234.50")),
        ("¥1,234", Decimal("1234.00")),
        ("￥ 88", Decimal("88.00")),
        ("RMB 1,000,000", Decimal("1000000.00")),
        ("1.5万", Decimal("15000.00")),
        ("12万元", Decimal("120000.00")),
        ("３００", Decimal("300.00")),
        (1234.5, Decimal("1234.50")),
        ("", None),
    ],
)
def test_amounts(raw, expected):
    """Thousands separators, ¥/￥/RMB, 万 and full-width digits."""
    assert parse_amount(raw) == expected


@pytest.mark.parametrize("raw", ["abc", "-5", "1e20", "NaN"])
def test_bad_amounts(raw):
    with pytest.raises(BadValue):
        parse_amount(raw)


def test_percent_and_bool():
    assert parse_percent("30%") == Decimal("30.00")
    assert parse_percent(0.3) == Decimal("30.00")
    assert parse_percent("70") == Decimal("70.00")
    with pytest.raises(BadValue):
        parse_percent("130")
    assert parse_bool("TRUE") is True
    assert parse_bool("否") is False
    with pytest.raises(BadValue):
        parse_bool("maybe")


def test_xlsx_serial_date_cells(tmp_path):
    """A date stored as a bare serial number in xlsx reads as that day."""
    path = write_xlsx(
        tmp_path / "o.xlsx",
        [
            ["商机名称", "客户名称", "商机金额", "预计成交日期", "商机阶段"],
            ["A", "B公司", "¥1,200", "", "验证客户"],
        ],
        date_cells=[(1, 3, 45352)],
    )
    table = open_table(path, known=layouts.known_headers("opportunities"))
    ((_n, row),) = list(table.rows)
    assert parse_date(row[3]) == date(2024, 3, 1)
    assert parse_amount(row[2]) == Decimal("1200.00")
