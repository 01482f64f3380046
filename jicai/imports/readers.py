"""Reading user files (CSV in UTF-8 / UTF-8-BOM / GB18030, XLSX, XLS) into header + rows."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path

from python_calamine import CalamineWorkbook

EXCEL_SUFFIXES = {".xlsx", ".xlsm", ".xls", ".xlsb", ".ods"}
CSV_SUFFIXES = {".csv", ".txt", ".tsv"}
JSON_SUFFIXES = {".json"}
_ZIP_MAGIC = b"PK\x03\x04"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0"


class FileReadError(Exception):
    """The file as a whole cannot be read; carries a reason for the user in both languages."""

    def __init__(self, code: str, message_zh: str, message_en: str) -> None:
        super().__init__(message_en)
        self.code = code
        self.message_zh = message_zh
        self.message_en = message_en


@dataclass
class Table:
    """A sheet: raw header cells and data rows numbered as a spreadsheet shows them (header = 1)."""

    headers: list[str]
    rows: list[tuple[int, list[object]]]
    encoding: str = ""


def decode_text(data: bytes) -> tuple[str, str]:
    """Decode CSV bytes, detecting UTF-8 (with or without BOM) and GB18030."""
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8"), "utf-8-sig"
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030"), "gb18030"
    except UnicodeDecodeError as exc:
        raise FileReadError(
            "file.encoding",
            "无法识别文件编码：请另存为 UTF-8 或 GB18030 编码的 CSV，或直接上传 Excel 文件",
            "Unknown file encoding: save the CSV as UTF-8 or GB18030, or upload the Excel file",
        ) from exc


def _is_blank_row(cells: list[object]) -> bool:
    return all(c is None or (isinstance(c, str) and not c.strip()) for c in cells)


def _read_csv(data: bytes) -> Table:
    text, encoding = decode_text(data)
    sample = text[:4096]
    delimiter = "\t" if sample.count("\t") > sample.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        records = list(reader)
    except csv.Error as exc:
        raise FileReadError("file.csv", f"CSV 文件格式错误：{exc}", f"Malformed CSV file: {exc}") from exc
    return _to_table([list[object](r) for r in records], encoding)


def _read_excel(data: bytes) -> Table:
    try:
        workbook = CalamineWorkbook.from_filelike(io.BytesIO(data))
        if not workbook.sheet_names:
            raise FileReadError("file.empty", "工作簿中没有工作表", "The workbook has no sheets")
        sheet = workbook.get_sheet_by_index(0)
        records = sheet.to_python(skip_empty_area=False)
    except FileReadError:
        raise
    except Exception as exc:  # calamine raises several error types for damaged files
        raise FileReadError(
            "file.excel",
            f"无法读取 Excel 文件（文件可能已损坏或不是 Excel 格式）：{exc}",
            f"Cannot read the Excel file (damaged or not Excel): {exc}",
        ) from exc
    return _to_table([list(r) for r in records], "excel")


def _to_table(records: list[list[object]], encoding: str) -> Table:
    if not records or _is_blank_row(records[0]):
        raise FileReadError(
            "file.no_header", "文件为空或第一行不是表头", "The file is empty or its first row is not a header"
        )
    headers = ["" if c is None else str(c).strip().lstrip("\ufeff") for c in records[0]]
    while headers and not headers[-1]:
        headers.pop()
    rows: list[tuple[int, list[object]]] = []
    for index, cells in enumerate(records[1:], start=2):
        if _is_blank_row(cells):
            continue
        rows.append((index, cells))
    return Table(headers=headers, rows=rows, encoding=encoding)


def _read_json(data: bytes) -> Table:
    """A JSON array of objects, as ``jicai export --format json`` writes it."""
    try:
        records = json.loads(decode_text(data)[0])
    except json.JSONDecodeError as exc:
        raise FileReadError("file.json", f"JSON 文件格式错误：{exc}", f"Malformed JSON: {exc}") from exc
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise FileReadError("file.json", "JSON 文件应为对象数组", "The JSON file must be an array of objects")
    headers: list[str] = []
    for record in records:
        headers.extend(k for k in record if k not in headers)
    rows = [[record.get(h) for h in headers] for record in records]
    return _to_table([list[object](headers), *rows], "json")


def read_table(data: bytes, filename: str) -> Table:
    """Read an uploaded or local file; the format comes from its content first, then its name."""
    suffix = Path(filename).suffix.lower()
    if data.startswith((_ZIP_MAGIC, _OLE_MAGIC)) or suffix in EXCEL_SUFFIXES:
        return _read_excel(data)
    if suffix in JSON_SUFFIXES:
        return _read_json(data)
    if suffix and suffix not in CSV_SUFFIXES:
        raise FileReadError(
            "file.type",
            f"不支持的文件类型 {suffix}：请上传 CSV、XLSX、XLS 或 JSON 文件",
            f"Unsupported file type {suffix}: upload CSV, XLSX, XLS or JSON",
        )
    return _read_csv(data)


def read_path(path: Path) -> Table:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise FileReadError("file.open", f"无法打开文件：{exc}", f"Cannot open the file: {exc}") from exc
    return read_table(data, path.name)
