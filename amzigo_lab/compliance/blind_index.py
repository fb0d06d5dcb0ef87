"""The DSR blind index: a buyer is found through keyed tokens, never by scanning plaintext.

Each `order_buyers` row contributes HMAC-SHA256 tokens (key: the lake secret `dsr-blind-index`)
of its normalised e-mail and of each normalised name + postcode, stored with the row's tenant,
partition and order id. `index_buyers` maintains it (ingestion calls it after writes; purges and
erasures forget the partitions they drop). A subject is named in audit events and requests only
by `subject_id`, the first 12 hex digits of a token.
"""

from __future__ import annotations

import hashlib
import hmac
import unicodedata
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from amzigo_lab.compliance.common import ComplianceError
from amzigo_lab.lake.records import SubjectIndex

if TYPE_CHECKING:
    from amzigo_lab.lake.catalog import Partition
    from amzigo_lab.lake.store import Lake

PII_DATASET = "order_buyers"
INDEX_SECRET = "dsr-blind-index"  # noqa: S105 - a secret name, not a secret


def normalise_email(email: str) -> str:
    """Trimmed, NFKC, lower-case e-mail."""
    return unicodedata.normalize("NFKC", email).strip().lower()


def normalise_name(name: str) -> str:
    """NFKC, case-folded, single-spaced name."""
    return " ".join(unicodedata.normalize("NFKC", name).casefold().split())


def normalise_postcode(postcode: str) -> str:
    """Upper-case postcode without spaces or dashes."""
    return "".join(ch for ch in unicodedata.normalize("NFKC", postcode).upper() if ch.isalnum())


def _token(key: bytes, kind: str, value: str) -> str:
    return hmac.new(key, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()


def email_token(lake: Lake, email: str) -> str:
    """The blind-index token of an e-mail address."""
    return _token(lake.secret(INDEX_SECRET), "email", normalise_email(email))


def name_token(lake: Lake, name: str, postcode: str) -> str:
    """The blind-index token of a name + postcode."""
    value = f"{normalise_name(name)}|{normalise_postcode(postcode)}"
    return _token(lake.secret(INDEX_SECRET), "name_postcode", value)


def _row_tokens(key: bytes, row: dict[str, Any]) -> set[str]:
    out = set()
    if row.get("buyer_email"):
        out.add(_token(key, "email", normalise_email(row["buyer_email"])))
    postcode = normalise_postcode(row.get("ship_postal_code") or "")
    for col in ("buyer_name", "ship_name"):
        if row.get(col) and postcode:
            out.add(_token(key, "name_postcode", f"{normalise_name(row[col])}|{postcode}"))
    return out


def read_partition(lake: Lake, p: Partition) -> pa.Table:
    """Every row of one live partition (decrypted with its key)."""
    from amzigo_lab.lake.pme import read_file

    spec = lake.spec(p.dataset)
    lake.require_intact([p.id])
    keys = lake.partition_keys([p.key_id])
    tables = [
        read_file(str(lake.path(f.rel_path)), keys).read() for f in lake.catalog.files([p.id])
    ]
    return pa.concat_tables(tables) if tables else spec.schema.empty_table()


def index_buyers(lake: Lake, partitions: list[Partition] | None = None) -> int:
    """Index the `order_buyers` partitions not yet indexed (or grown since); rows indexed."""
    key = lake.secret(INDEX_SECRET)
    index = SubjectIndex(lake.catalog)
    done = index.indexed()
    parts = partitions if partitions is not None else lake.catalog.partitions(PII_DATASET)
    objected = index.objected_tokens()
    n = 0
    for p in parts:
        if p.dataset != PII_DATASET or p.state != "live" or done.get(p.id) == p.row_count:
            continue
        rows = read_partition(lake, p).to_pylist()
        entries = {
            (t, p.tenant, p.id, r["amazon_order_id"]) for r in rows for t in _row_tokens(key, r)
        }
        # new orders of a subject who objected are excluded too
        index.replace_partition(p.id, p.row_count, entries, objected)
        n += len(rows)
    return n


def forget_partitions(lake: Lake, partition_ids: list[int]) -> None:
    """Remove the index entries of dropped partitions."""
    SubjectIndex(lake.catalog).forget_partitions(partition_ids)


@dataclass(frozen=True)
class Subject:
    """A data subject as the index knows them: tokens and (tenant, partition, order) hits."""

    token: str
    hits: list[tuple[str, int, str]] = field(default_factory=list)

    @property
    def subject_id(self) -> str:
        """The pseudonymous id used in requests and audit events."""
        return self.token[:12]

    def partitions(self) -> list[int]:
        """Partition ids holding the subject."""
        return sorted({h[1] for h in self.hits})

    def orders(self, partition_id: int | None = None) -> set[str]:
        """Order ids of the subject (optionally within one partition)."""
        return {h[2] for h in self.hits if partition_id is None or h[1] == partition_id}


def find_subject(
    lake: Lake,
    *,
    email: str | None = None,
    name: str | None = None,
    postcode: str | None = None,
    tenant: str | None = None,
) -> Subject:
    """Look a subject up in the blind index (e-mail, or name + postcode)."""
    if email:
        token = email_token(lake, email)
    elif name and postcode:
        token = name_token(lake, name, postcode)
    else:
        raise ComplianceError("identify the subject by e-mail, or by name and postcode")
    index_buyers(lake)
    return subject_of(lake, token, tenant)


def subject_of(lake: Lake, token: str, tenant: str | None) -> Subject:
    """The subject of a blind-index token as the index knows them now."""
    return Subject(token, SubjectIndex(lake.catalog).hits(token, tenant))


def filter_orders(table: pa.Table, orders: set[str]) -> pa.Table:
    """The rows of these orders."""
    mask = pc.is_in(table.column("amazon_order_id"), value_set=pa.array(sorted(orders)))
    return table.filter(mask)
