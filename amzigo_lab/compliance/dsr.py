"""Data-subject requests: access (export), rectification, erasure, objection.

The request handling lives in modules named after each part; this module gathers their public
names, as callers have always imported them from here:

- compliance/blind_index.py: finding a buyer through keyed tokens, never by scanning plaintext
  (`index_buyers`, `find_subject`, `Subject`);
- compliance/subject_requests.py: the requests as recorded, with their one-month deadline;
- compliance/subject_export.py: right of access (`export_subject`, `read_export`);
- compliance/subject_rewrites.py: erasure and rectification, and `resume_requests` after a
  crash;
- compliance/objections.py: objections and the orders review requests skip.
"""

from amzigo_lab.compliance.blind_index import (
    INDEX_SECRET,
    PII_DATASET,
    Subject,
    email_token,
    find_subject,
    forget_partitions,
    index_buyers,
    name_token,
    normalise_email,
    normalise_name,
    normalise_postcode,
    read_partition,
)
from amzigo_lab.compliance.objections import (
    erased_order_ids,
    object_subject,
    objected_order_ids,
)
from amzigo_lab.compliance.subject_export import (
    EXPORT_FORMAT,
    export_subject,
    read_export,
    write_encrypted,
)
from amzigo_lab.compliance.subject_requests import list_requests, open_request
from amzigo_lab.compliance.subject_rewrites import (
    RECTIFIABLE,
    erase_subject,
    rectify_subject,
    resume_requests,
)

__all__ = [
    "EXPORT_FORMAT",
    "INDEX_SECRET",
    "PII_DATASET",
    "RECTIFIABLE",
    "Subject",
    "email_token",
    "erase_subject",
    "erased_order_ids",
    "export_subject",
    "find_subject",
    "forget_partitions",
    "index_buyers",
    "list_requests",
    "name_token",
    "normalise_email",
    "normalise_name",
    "normalise_postcode",
    "object_subject",
    "objected_order_ids",
    "open_request",
    "read_export",
    "read_partition",
    "rectify_subject",
    "resume_requests",
    "write_encrypted",
]
