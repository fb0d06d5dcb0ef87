"""Compliance: retention purges, legal holds, Amazon deletion notices, data-subject requests,
destruction certificates and the record of processing activities.

Everything here drops data through `Lake.drop_partitions` (cryptographic erase + file deletion +
verification) and records what it did in the audit log and as signed certificates. Nothing here
reads plaintext to find a person: the DSR blind index does that.
"""

from amzigo_lab.compliance.certificates import (
    DestructionCertificate,
    get_certificate,
    list_certificates,
    verify_certificate,
)
from amzigo_lab.compliance.derived import register_output
from amzigo_lab.compliance.dsr import index_buyers, objected_order_ids
from amzigo_lab.compliance.holds import LegalHold, add_hold, list_holds, release_hold
from amzigo_lab.compliance.notices import delete_scope
from amzigo_lab.compliance.retention import PurgePlan, PurgeResult, plan_purge, purge
from amzigo_lab.compliance.roles import require_role
from amzigo_lab.compliance.ropa import build_ropa, write_ropa

__all__ = [
    "DestructionCertificate",
    "LegalHold",
    "PurgePlan",
    "PurgeResult",
    "add_hold",
    "build_ropa",
    "delete_scope",
    "get_certificate",
    "index_buyers",
    "list_certificates",
    "list_holds",
    "objected_order_ids",
    "plan_purge",
    "purge",
    "register_output",
    "release_hold",
    "require_role",
    "verify_certificate",
    "write_ropa",
]
