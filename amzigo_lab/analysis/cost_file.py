"""Cost files (`amzigo costs import FILE`): parse and validate every row, all or nothing.

A cost file is a CSV (UTF-8, header row) with the columns

    sku, unit_cost, currency          required
    marketplace, valid_from           optional

`marketplace` is a code (US) or an id (ATVPDKIKX0DER); empty, `ALL` or `*` = every marketplace.
`valid_from` is the first marketplace-local day the cost applies (YYYY-MM-DD); rows without it
take the command's `--valid-from`. `unit_cost` is a plain decimal number (`12.5`, at most 4
decimal places, no thousands separators or currency symbols), never negative; `currency` a
3-letter code, and it must be the marketplace's currency when a marketplace is named.

XLSX is read with openpyxl when that package is installed; it is not part of amzigo-lab's
dependencies, so without it an .xlsx file is refused with a message saying to save it as CSV.

Rows are numbered as a spreadsheet shows them (the header is row 1). Every problem is
collected and reported by row ("row 7: unit_cost 'abc' is not a number"); one problem and
nothing is imported. This module has no I/O beyond the bytes it is given: the CLI reads the
file, the gateway parses it again (it never trusts the client's check) and writes the rows.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from amzigo_lab.analysis.money import MARKETPLACES, marketplace
from amzigo_lab.errors import AmzigoError

REQUIRED = ("sku", "unit_cost", "currency")
OPTIONAL = ("marketplace", "valid_from")
#: Header spellings accepted for a column (compared lower-case, spaces as underscores).
ALIASES = {"seller_sku": "sku", "marketplace_id": "marketplace", "cost": "unit_cost"}
MAX_BYTES = 2 * 1024 * 1024  # base64 on the wire stays well under gRPC's 4 MiB
MAX_ROWS = 100_000
MAX_SKU = 200
UNIT_COST_PLACES = 4
#: How many row errors a message lists before "... and N more".
SHOWN_ERRORS = 20
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_ALL = ("", "ALL", "*")
XLSX_SUFFIXES = (".xlsx", ".xlsm")


class CostFileError(AmzigoError, ValueError):
    """A cost file that cannot be imported; the message names every bad row. Nothing written."""


@dataclass(frozen=True)
class CostRow:
    """One validated cost: `marketplace_id` None = every marketplace."""

    sku: str
    marketplace_id: str | None
    currency: str
    unit_cost: Decimal
    valid_from: dt.date


def digest(data: bytes) -> str:
    """The SHA-256 of a file's bytes (stored with each row it imported)."""
    return hashlib.sha256(data).hexdigest()


def xlsx_supported() -> bool:
    """Whether openpyxl is installed (it is not an amzigo-lab dependency)."""
    try:
        import openpyxl  # noqa: F401
    except ImportError:
        return False
    return True


def parse_cost_file(
    name: str, data: bytes, default_valid_from: dt.date | None = None
) -> list[CostRow]:
    """Every row of the file `name` (its bytes `data`), validated; CostFileError naming each bad
    row otherwise."""
    if len(data) > MAX_BYTES:
        raise CostFileError(
            f"{name}: {len(data):,} bytes; a cost file may have at most {MAX_BYTES:,}"
        )
    if name.lower().endswith(XLSX_SUFFIXES):
        table = _xlsx_rows(name, data)
    else:
        table = _csv_rows(name, data)
    if not table:
        raise CostFileError(
            f"{name}: the file is empty; it needs a header row: {', '.join(REQUIRED)}"
        )
    columns = _header(name, table[0])
    errors: list[str] = []
    out: list[CostRow] = []
    seen: dict[tuple[str, str | None, str, dt.date], int] = {}
    body = table[1:]
    if len(body) > MAX_ROWS:
        raise CostFileError(f"{name}: {len(body):,} rows; at most {MAX_ROWS:,} per import")
    for n, cells in enumerate(body, start=2):
        if not any(c.strip() for c in cells):
            continue  # a blank line
        if len(cells) > len(columns) and any(c.strip() for c in cells[len(columns) :]):
            errors.append(f"row {n}: {len(cells)} values but the header has {len(columns)} columns")
            continue
        values = {
            col: (cells[i].strip() if i < len(cells) else "") for i, col in enumerate(columns)
        }
        row, problems = _row(n, values, default_valid_from)
        errors.extend(problems)
        if row is None:
            continue
        key = (row.sku, row.marketplace_id, row.currency, row.valid_from)
        if key in seen:
            errors.append(
                f"row {n}: same sku, marketplace, currency and valid_from as row {seen[key]}"
            )
            continue
        seen[key] = n
        out.append(row)
    if errors:
        shown = "\n".join(f"  {e}" for e in errors[:SHOWN_ERRORS])
        more = len(errors) - SHOWN_ERRORS
        tail = f"\n  ... and {more} more" if more > 0 else ""
        raise CostFileError(
            f"{name}: {len(errors)} problem(s); nothing was imported:\n{shown}{tail}"
        )
    if not out:
        raise CostFileError(f"{name}: no cost rows below the header; nothing was imported")
    return out


def _csv_rows(name: str, data: bytes) -> list[list[str]]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CostFileError(
            f"{name}: not UTF-8 text (byte {exc.start}); save it as CSV UTF-8 and import again"
        ) from None
    try:
        return [list(r) for r in csv.reader(io.StringIO(text, newline=""))]
    except csv.Error as exc:
        raise CostFileError(f"{name}: not a readable CSV file ({exc})") from None


def _xlsx_rows(name: str, data: bytes) -> list[list[str]]:
    if not xlsx_supported():
        raise CostFileError(
            f"{name}: XLSX files need the openpyxl package, which is not installed here; "
            "save the sheet as CSV (UTF-8) and import that file"
        )
    import openpyxl

    try:
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for a bad file
        raise CostFileError(f"{name}: not a readable XLSX file ({type(exc).__name__})") from None
    sheet = book.worksheets[0]
    rows: list[list[str]] = []
    for values in sheet.iter_rows(values_only=True):
        rows.append([_cell(v) for v in values])
    book.close()
    return rows


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _header(name: str, cells: list[str]) -> list[str]:
    columns = []
    for cell in cells:
        col = "_".join(cell.strip().lower().split())
        columns.append(ALIASES.get(col, col))
    known = (*REQUIRED, *OPTIONAL)
    expected = ", ".join(known)
    for col in columns:
        if col and col not in known:
            raise CostFileError(
                f"{name}: unknown column {col!r} in the header; columns: {expected}"
            )
    if dup := sorted({c for c in columns if c and columns.count(c) > 1}):
        raise CostFileError(f"{name}: column {dup[0]!r} appears more than once in the header")
    if missing := [c for c in REQUIRED if c not in columns]:
        raise CostFileError(
            f"{name}: the header lacks {', '.join(missing)}; columns: {expected} "
            "(the first row must be the header)"
        )
    return columns


def _row(
    n: int, v: dict[str, str], default_valid_from: dt.date | None
) -> tuple[CostRow | None, list[str]]:
    problems: list[str] = []
    sku = v.get("sku", "")
    if not sku:
        problems.append(f"row {n}: sku is empty")
    elif len(sku) > MAX_SKU:
        problems.append(f"row {n}: sku is longer than {MAX_SKU} characters")
    raw_cost = v.get("unit_cost", "")
    cost: Decimal | None = None
    try:
        cost = Decimal(raw_cost)
        if not cost.is_finite():
            raise InvalidOperation
    except InvalidOperation:
        what = "is empty" if not raw_cost else f"{raw_cost!r} is not a number"
        problems.append(f"row {n}: unit_cost {what}")
        cost = None
    if cost is not None:
        exponent = cost.as_tuple().exponent
        if cost < 0:
            problems.append(f"row {n}: unit_cost {raw_cost!r} is negative")
        elif isinstance(exponent, int) and exponent < -UNIT_COST_PLACES:
            problems.append(
                f"row {n}: unit_cost {raw_cost!r} has more than {UNIT_COST_PLACES} decimal places"
            )
        elif cost >= Decimal("1e14"):
            problems.append(f"row {n}: unit_cost {raw_cost!r} is too large")
    currency = v.get("currency", "").upper()
    if not _CURRENCY.fullmatch(currency):
        what = "is empty" if not currency else f"{v.get('currency')!r} is not a 3-letter code"
        problems.append(f"row {n}: currency {what}")
    market_id: str | None = None
    raw_market = v.get("marketplace", "")
    if raw_market.upper() not in _ALL:
        try:
            found = marketplace(raw_market)
        except ValueError:
            known = ", ".join(m.code for m in MARKETPLACES)
            problems.append(
                f"row {n}: unknown marketplace {raw_market!r}; use {known}, or leave it empty "
                "for every marketplace"
            )
        else:
            assert found is not None
            market_id = found.marketplace_id
            if _CURRENCY.fullmatch(currency) and currency != found.currency:
                problems.append(
                    f"row {n}: currency {currency} is not marketplace {found.code}'s "
                    f"({found.currency})"
                )
    raw_day = v.get("valid_from", "")
    day: dt.date | None = default_valid_from
    if raw_day:
        try:
            day = dt.date.fromisoformat(raw_day)
        except ValueError:
            problems.append(f"row {n}: valid_from {raw_day!r} is not a date (YYYY-MM-DD)")
    elif day is None:
        problems.append(
            f"row {n}: valid_from is empty (fill it in, or give --valid-from YYYY-MM-DD)"
        )
    if problems or cost is None or day is None:
        return None, problems
    return CostRow(sku, market_id, currency, cost, day), []


def cost_table(rows: list[CostRow], sha256: str, imported_at: dt.datetime) -> Any:
    """The `product_costs` rows of one import (a pyarrow table in the dataset's schema)."""
    import pyarrow as pa

    from amzigo_lab.datasets import PRODUCT_COSTS

    return pa.table(
        {
            "sku": [r.sku for r in rows],
            "marketplace_id": [r.marketplace_id for r in rows],
            "currency": [r.currency for r in rows],
            "unit_cost": [r.unit_cost for r in rows],
            "valid_from": [r.valid_from for r in rows],
            "imported_at": [imported_at] * len(rows),
            "source_sha256": [sha256] * len(rows),
        },
        schema=PRODUCT_COSTS.schema,
    )
