"""The web login's data-policy notice (data policy 7): server-rendered HTML, no scripts."""

from __future__ import annotations

import html
from typing import Any


def notice_html(policy: dict[str, Any], next_url: str) -> str:
    """ "Policy version N (effective ...); K changes since your last login" with each change's
    version, effective date and summary, and a Continue link to `next_url`."""
    e = html.escape
    unread = policy.get("unread") or []
    changes = "change" if len(unread) == 1 else "changes"
    since = "since the initial policy" if policy.get("first") else "since your last login"
    items = "".join(
        f"<li><b>Version {int(u['version'])}</b> (effective {e(str(u['effective']))}): "
        f"{e(str(u['summary']))}</li>"
        for u in unread
    )
    return (
        f"<section id='policy-notice' class='msg info'><p>Data policy version "
        f"{int(policy['version'])} (effective {e(str(policy['effective']))}); {len(unread)} "
        f"{changes} {since}:</p><ul>{items}</ul>"
        "<p>The full text and the differences: <code>amzigo policy log</code>, "
        "<code>amzigo policy diff A B</code>.</p></section>"
        f"<p><a id='policy-continue' href='{e(next_url, quote=True)}'>Continue</a></p>"
    )
