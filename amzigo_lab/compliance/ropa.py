"""The record of processing activities (GDPR Art. 30 style), built from the declarations.

Every dataset and column comes from `amzigo_lab.datasets.REGISTRY` (data class, origin,
retention rule), the PII purposes from `amzigo_lab.config.PII_PURPOSES`; nothing is typed twice.
"""

from __future__ import annotations

import datetime as dt
import html
import json
from pathlib import Path
from typing import Any

from amzigo_lab.compliance.common import tool_version
from amzigo_lab.config import PII_PURPOSES
from amzigo_lab.datasets import REGISTRY
from amzigo_lab.schema import DatasetSpec

STORAGE = "encrypted Parquet (PME AES-256-GCM, one key per partition, wrapped by the master key)"
DISPOSAL = "cryptographic erase of the partition key + file deletion, verified and certified"
LEGAL_BASIS = {
    "order_fulfilment": "contract (GDPR Art. 6(1)(b)): shipping the buyer's order",
    "tax": "legal obligation (Art. 6(1)(c)): tax invoices and records",
    "legal": "legal obligation / legal claims (Art. 6(1)(c), 17(3)(e))",
}
NON_PII_BASIS = "legitimate interest of the seller (Art. 6(1)(f)) under the Amazon data policy"


def _dataset(spec: DatasetSpec, configured: tuple[str, ...]) -> dict[str, Any]:
    purposes = list(PII_PURPOSES) if spec.pii else ["seller analytics and reporting"]
    return {
        "dataset": spec.name,
        "description": spec.description,
        "source": "Amazon Selling Partner API" if spec.origin == "amazon" else "internal",
        "origin": spec.origin,
        "personal_data": spec.pii,
        "purposes": purposes,
        "purposes_enabled_here": [p for p in configured if spec.pii],
        "legal_basis": [LEGAL_BASIS[p] for p in PII_PURPOSES] if spec.pii else [NON_PII_BASIS],
        "retention": spec.retention.describe(),
        "retention_rule": spec.retention.name,
        "storage": STORAGE,
        "sharing": "none (no recipients; no transfers outside the deployment)",
        "disposal": DISPOSAL,
        "columns": [
            {
                "name": c.name,
                "data_class": c.data_class,
                "personal": c.data_class.startswith("pii."),
            }
            for c in spec.columns
        ],
    }


def build_ropa(configured_purposes: tuple[str, ...] = ()) -> dict[str, Any]:
    """The record as data."""
    return {
        "title": "Record of processing activities",
        "generated": dt.datetime.now(dt.UTC).date().isoformat(),
        "tool": tool_version(),
        "controller": "the seller operating this deployment (see docs/compliance.md)",
        "pii_purposes": list(PII_PURPOSES),
        "pii_purposes_enabled": list(configured_purposes),
        "data_subjects": "Amazon buyers of merchant-fulfilled orders (PII datasets only)",
        "security": "encryption at rest, role- and purpose-based access, tamper-evident audit "
        "log, MFA (see docs/architecture.md and governance)",
        "datasets": [_dataset(s, configured_purposes) for s in REGISTRY.values()],
    }


def render_html(ropa: dict[str, Any]) -> str:
    """The record as a readable HTML page."""
    e = html.escape
    parts = [
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{e(ropa['title'])}"
        "</title><style>body{font-family:sans-serif;max-width:75em;margin:2em auto}"
        "table{border-collapse:collapse;margin-bottom:1em}td,th{border:1px solid #bbb;"
        "padding:.2em .5em;text-align:left;font-size:.9em}</style></head><body>",
        f"<h1>{e(ropa['title'])}</h1><p>Generated {e(ropa['generated'])} by "
        f"{e(ropa['tool'])}. Controller: {e(ropa['controller'])}.</p>",
        f"<p>PII purposes: {e(', '.join(ropa['pii_purposes']))} (enabled here: "
        f"{e(', '.join(ropa['pii_purposes_enabled']) or 'none')}).</p>",
    ]
    for d in ropa["datasets"]:
        parts.append(
            f"<h2>{e(d['dataset'])}{' (personal data)' if d['personal_data'] else ''}</h2>"
        )
        parts.append(f"<p>{e(d['description'])}</p><table>")
        for k in (
            "source",
            "purposes",
            "legal_basis",
            "retention",
            "storage",
            "sharing",
            "disposal",
        ):
            v = d[k]
            parts.append(
                f"<tr><th>{e(k)}</th><td>{e('; '.join(v) if isinstance(v, list) else v)}</td></tr>"
            )
        parts.append("</table><table><tr><th>column</th><th>data class</th><th>personal</th></tr>")
        for c in d["columns"]:
            parts.append(
                f"<tr><td>{e(c['name'])}</td><td>{e(c['data_class'])}</td>"
                f"<td>{'yes' if c['personal'] else ''}</td></tr>"
            )
        parts.append("</table>")
    parts.append("</body></html>\n")
    return "".join(parts)


def write_ropa(out_dir: Path, configured_purposes: tuple[str, ...] = ()) -> list[Path]:
    """Write `ropa.json` and `ropa.html` into `out_dir`."""
    ropa = build_ropa(configured_purposes)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / "ropa.json", out_dir / "ropa.html"]
    paths[0].write_text(json.dumps(ropa, indent=2), encoding="utf-8")
    paths[1].write_text(render_html(ropa), encoding="utf-8")
    return paths
