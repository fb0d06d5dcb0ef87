"""Tabletop exercise for docs/incident-response.md, run against a demo home.

    amzigo demo --no-serve                      # once: a demo home with its users
    python docs/incident_tabletop.py [--home HOME]

It plays the attacker (a stolen `analyst-demo` session) and the responder (`compliance-demo`),
pausing nowhere: every step prints the `amzigo incident` command it runs and its output, so a
facilitator can read the transcript aloud and ask the questions in the plan. The demo users'
one-time passwords are changed at their first login here; the new ones are kept (0600) in
`<home>/state/tabletop-passwords.json` so the exercise can run again.

Best run on a fresh demo home. Its alert settings are strict (three denials open an
incident), so it sets `[incident] auto_open_since` to its own start: alerts raised before it
(a person's earlier wrong passwords or refused reads on a used home) open no incident.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import secrets
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

import pyotp

from amzigo_lab.client import protocol
from amzigo_lab.client.transport import GatewayClient, ensure_gateway
from amzigo_lab.client.workbench import connect
from amzigo_lab.errors import AccessDenied

ANALYST, RESPONDER = "analyst-demo", "compliance-demo"
CONFIG = """
[alerts]
evaluate_every_seconds = 2
denials_count = 3

[incident]
auto_open_since = "{since}"
auto_open = ["repeated_denials", "audit_verification_failed", "pii_outside_purpose"]
contact = "Tabletop incident lead, +1 555 0100"
"""
SINCE = re.compile(r'(?m)^auto_open_since = "[^"]*"$')


def configure(config: Path) -> None:
    """Add the exercise's alert settings once; on every run, open incidents only for alerts
    raised from now on (`[incident] auto_open_since`)."""
    since = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    text = config.read_text(encoding="utf-8") if config.exists() else ""
    if "[incident]" not in text:
        text += CONFIG.format(since=since)
    elif SINCE.search(text):
        text = SINCE.sub(f'auto_open_since = "{since}"', text, count=1)
    else:
        text = text.replace("[incident]\n", f'[incident]\nauto_open_since = "{since}"\n', 1)
    config.write_text(text, encoding="utf-8")


def say(text: str) -> None:
    print(f"\n=== {text}", flush=True)


def demo_credentials(home: Path) -> dict[str, tuple[str, str]]:
    """user -> (one-time password, TOTP secret) from the demo's credentials file."""
    text = (home / "demo-credentials.txt").read_text(encoding="utf-8")
    out = {}
    for block in text.split("user: ")[1:]:
        user = block.split("\n", 1)[0].strip()
        password = re.search(r"password: (\S+)", block)
        uri = re.search(r"totp: (\S+)", block)
        if password and uri:
            secret = urllib.parse.parse_qs(urllib.parse.urlparse(uri.group(1)).query)["secret"]
            out[user] = (password.group(1), secret[0])
    return out


def log_in(address: str, home: str, user: str, creds: dict[str, tuple[str, str]]) -> str:
    """A session token for `user` (changing the one-time password on first use)."""
    store = Path(home) / "state" / "tabletop-passwords.json"
    known = json.loads(store.read_text()) if store.exists() else {}
    password, secret = creds[user]
    code = pyotp.TOTP(secret).now()
    with GatewayClient(address) as client:
        answer = client.action(
            protocol.LOGIN, {"user": user, "password": known.get(user, password), "code": code}
        )
        if answer.get("password_change_required"):
            new = f"Tabletop-{secrets.token_urlsafe(10)}-Lamp-42"
            answer = client.action(
                protocol.LOGIN_CHANGE_PASSWORD, {"ticket": answer["ticket"], "new_password": new}
            )
            known[user] = new
            fd = os.open(store, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                json.dump(known, fh)
    return str(answer["token"])


def amzigo(home: str, session: str, *args: str, check: bool = True) -> str:
    """Run one `amzigo` command as the responder and print it with its output."""
    print(f"$ amzigo {' '.join(args)}", flush=True)
    env = {**os.environ, "AMZIGO_HOME": home, "AMZIGO_SESSION": session}
    proc = subprocess.run(
        [sys.executable, "-c", "from amzigo_lab.cli import main; main()", *args],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    print((proc.stdout + proc.stderr).rstrip(), flush=True)
    if check and proc.returncode != 0:
        raise SystemExit(f"step failed: amzigo {' '.join(args)}")
    return proc.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--home", default=os.environ.get("AMZIGO_HOME", ""))
    home = parser.parse_args().home
    if not home:
        raise SystemExit("name the demo home: --home HOME (or set AMZIGO_HOME)")
    configure(Path(home) / "config.toml")
    creds = demo_credentials(Path(home))
    address = ensure_gateway(Path(home))
    responder = log_in(address, home, RESPONDER, creds)
    stolen = log_in(address, home, ANALYST, creds)

    say("1. Inject: someone uses the analyst's session token, reads, then probes for PII")
    wb = connect("sales_analysis", home=home, token=stolen)
    rows = len(wb.sql("SELECT * FROM orders"))
    print(f"attacker read {rows} order rows")
    for _ in range(3):
        try:
            connect("order_fulfilment", home=home, token=stolen)
        except AccessDenied as exc:
            print(f"denied: {str(exc)[:90]}")

    say("2. Detect: the gateway's alert pipeline opens an incident (question: who is paged?)")
    incident = ""
    for _ in range(60):
        listed = json.loads(amzigo(home, responder, "incident", "list", "--open-only", "--json"))
        mine = [i for i in listed["incidents"] if i["source"].endswith(f":{ANALYST}")]
        if mine:
            incident = mine[0]["id"]
            break
        time.sleep(1)
    if not incident:
        raise SystemExit("no incident was opened: is [incident] auto_open in config.toml?")
    amzigo(home, responder, "incident", "list", "--open-only")

    say("3. Contain: isolate the analyst (question: which tenants are held, and why?)")
    amzigo(home, responder, "incident", "isolate", incident, "--scope", f"user:{ANALYST}")
    try:
        wb.sql("SELECT count(*) FROM orders")
        print("UNEXPECTED: the stolen token still works")
    except AccessDenied as exc:
        print(f"the stolen token is refused: {str(exc)[:90]}")

    say("4. Preserve evidence, hand it over, verify it elsewhere")
    out = Path(tempfile.mkdtemp(prefix="amzigo-evidence-")) / incident
    amzigo(home, responder, "incident", "evidence", "collect", incident, "--out", str(out))
    amzigo(home, responder, "incident", "evidence", "handover", str(out), "--to",
           "compliance owner", "--reason", "tabletop review")  # fmt: skip
    key = Path(home) / "keys" / "certificate-signing.pub.pem"
    amzigo(home, "", "incident", "evidence", "verify", str(out), "--key", str(key))

    say("5. A retention purge during the incident keeps the held data")
    amzigo(home, "", "purge", "--dry-run")

    say("6. Notify Amazon: the draft (a person reviews and sends it; the tool never does)")
    amzigo(home, responder, "incident", "notify-draft", incident)
    amzigo(home, responder, "incident", "mark-notified", incident, "--note", "tabletop: not sent")

    say("7. Recover and close")
    amzigo(home, responder, "incident", "restore", incident)
    amzigo(home, responder, "incident", "close", incident, "--note",
           "tabletop: token theft simulated; isolation, evidence and notice rehearsed")  # fmt: skip
    amzigo(home, responder, "incident", "timeline", incident)
    amzigo(home, responder, "audit", "search", "--resource", f"incident:{incident}")


if __name__ == "__main__":
    main()
