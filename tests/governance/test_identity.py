"""Identity store: users, TOTP single use, lockout, expiry, sessions, events, storage."""

from __future__ import annotations

import datetime as dt
import itertools
import os
import sqlite3
import stat
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Literal

import pyotp
import pytest
from argon2 import PasswordHasher

import amzigo_lab.governance.identity as identity
from amzigo_lab.governance.identity import (
    NIST_800_63B,
    AccountDisabled,
    AccountLocked,
    Enrollment,
    IdentityError,
    IdentityStore,
    InvalidCredentials,
    InvalidUserId,
    OneTimePasswordExpired,
    PasswordChangeRequired,
    PasswordExpired,
    PasswordRejected,
    SchemaTooNew,
    SessionExpired,
    UnknownUser,
    UserExists,
    UserStatus,
)

PASSWORD = "Velvet-Harbor-Lamp-42"
KEY = bytes(range(32))


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = dt.datetime(2026, 11, 27, 9, 0, 0, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


class CountingHasher(PasswordHasher):
    """A cheap argon2id hasher that counts verify calls."""

    def __init__(self, time_cost: int = 1) -> None:
        super().__init__(time_cost=time_cost, memory_cost=8192, parallelism=1)
        self.verifies = 0

    def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
        self.verifies += 1
        return super().verify(hash, password)


Events = list[tuple[str, dict[str, object]]]
Factory = Callable[..., IdentityStore]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def events() -> Events:
    return []


@pytest.fixture
def make_store(tmp_path: Path, clock: FakeClock, events: Events) -> Iterator[Factory]:
    opened: list[IdentityStore] = []

    def make(**kwargs: object) -> IdentityStore:
        options: dict[str, object] = {
            "clock": clock,
            "hasher": CountingHasher(),
            "on_event": lambda action, fields: events.append((action, fields)),
        }
        options.update(kwargs)
        store = IdentityStore(tmp_path / "identity.db", lambda: KEY, **options)  # type: ignore[arg-type]
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


@pytest.fixture
def store(make_store: Factory) -> IdentityStore:
    return make_store()


def secret_of(enrollment: Enrollment) -> str:
    query = urllib.parse.urlparse(enrollment.provisioning_uri).query
    return urllib.parse.parse_qs(query)["secret"][0]


def code(secret: str, clock: FakeClock) -> str:
    return pyotp.TOTP(secret).at(clock.now)


def login(
    store: IdentityStore, clock: FakeClock, user: str, secret: str, password: str = PASSWORD
) -> identity.Session:
    clock.advance(seconds=30)  # a fresh time step: codes are single use
    return store.authenticate(user, password, code(secret, clock))


def add(store: IdentityStore, user: str = "alice", roles: tuple[str, ...] = ("analyst",)) -> str:
    return secret_of(store.add_user(user, list(roles), password=PASSWORD))


def db_bytes(tmp_path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(tmp_path.glob("identity.db*")))


# -- public API and storage ------------------------------------------------------------------


def test_public_api_is_pinned() -> None:
    assert set(identity.__all__) == {
        "COMPANY", "DEFAULT_POLICY", "NIST_800_63B", "PRESETS", "AccountDisabled",
        "AccountLocked", "Clock", "Enrollment", "EventSink", "IdentityError", "IdentityStore",
        "InvalidCredentials", "InvalidUserId", "OneTimePasswordExpired",
        "PasswordChangeRequired", "PasswordExpired", "PasswordPolicy",
        "PasswordRejected", "SchemaTooNew", "Session", "SessionExpired", "UnknownUser", "User",
        "UserExists", "UserStatus", "preset", "utc_now",
    }  # fmt: skip


def test_database_settings_and_private_file(store: IdentityStore, tmp_path: Path) -> None:
    db = store._db
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert db.execute("PRAGMA secure_delete").fetchone()[0] == 1
    assert db.execute("PRAGMA user_version").fetchone()[0] == 2  # users, then policy_seen
    assert stat.S_IMODE(os.stat(tmp_path / "identity.db").st_mode) == 0o600


def test_newer_schema_is_refused(make_store: Factory, tmp_path: Path) -> None:
    make_store().close()
    with sqlite3.connect(tmp_path / "identity.db") as conn:
        conn.execute("PRAGMA user_version = 99")
    with pytest.raises(SchemaTooNew, match=r"schema version 99.*upgrade amzigo-lab"):
        make_store()


def test_foreign_database_is_refused(make_store: Factory, tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "identity.db") as conn:
        conn.execute("CREATE TABLE orders (id INTEGER)")
    with pytest.raises(IdentityError, match="not an amzigo-lab identity database"):
        make_store()


def test_reopen_keeps_users(make_store: Factory, clock: FakeClock) -> None:
    first = make_store()
    secret = add(first)
    first.close()
    second = make_store()
    assert second.get("alice").roles == ("analyst",)
    login(second, clock, "alice", secret)


# -- users -----------------------------------------------------------------------------------


def test_add_user_returns_enrolment_once(store: IdentityStore, tmp_path: Path) -> None:
    enrollment = store.add_user("alice", ["analyst"], password=PASSWORD)
    secret = secret_of(enrollment)
    assert enrollment.provisioning_uri == (
        f"otpauth://totp/amzigo-lab:alice?secret={secret}&issuer=amzigo-lab"
    )
    assert secret not in repr(enrollment)
    png = enrollment.write_qr(tmp_path / "alice.png")
    assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert stat.S_IMODE(os.stat(png).st_mode) == 0o600
    user = store.get("alice")
    assert user.status is UserStatus.ACTIVE and user.mfa_enrolled
    assert not any("secret" in f or "hash" in f for f in user.__dataclass_fields__)


def test_user_validation(store: IdentityStore) -> None:
    add(store)
    with pytest.raises(UserExists, match="already exists"):
        store.add_user("alice", ["analyst"], password=PASSWORD)
    for bad in ("Al", "1alice", "alice smith", "x" * 65):
        with pytest.raises(InvalidUserId):
            store.add_user(bad, ["analyst"], password=PASSWORD)
    with pytest.raises(InvalidUserId):
        store.add_user("bob", ["Admin!"], password=PASSWORD)
    with pytest.raises(InvalidUserId):
        store.add_user("bob", ["seller"], "Tenant One", password=PASSWORD)
    with pytest.raises(PasswordRejected, match="context_word"):
        store.add_user("harbor", ["analyst"], password=PASSWORD)
    with pytest.raises(UnknownUser, match="no user 'nobody'"):
        store.get("nobody")


def test_roles_and_listing(store: IdentityStore, clock: FakeClock) -> None:
    secret = add(store, "bob", ("seller",))
    store.set_roles("bob", ["seller", "analyst"])
    assert store.get("bob").roles == ("seller", "analyst")
    session = login(store, clock, "bob", secret)
    store.set_roles("bob", ["seller"])
    assert store.validate_session(session.token).roles == ("seller",)
    add(store, "alice")
    assert [u.user_id for u in store.list_users()] == ["alice", "bob"]


# -- authentication --------------------------------------------------------------------------


def test_login_needs_both_factors(store: IdentityStore, clock: FakeClock) -> None:
    secret = add(store)
    session = login(store, clock, "alice", secret)
    assert session.user_id == "alice" and session.roles == ("analyst",)
    assert len(session.token) >= 43 and session.token not in repr(session)
    clock.advance(seconds=30)
    with pytest.raises(InvalidCredentials, match=r"^invalid username, password or code$"):
        store.authenticate("alice", "Wrong-Harbor-Lamp-42", code(secret, clock))
    with pytest.raises(InvalidCredentials):
        store.authenticate("alice", PASSWORD, "000000" if code(secret, clock) != "000000" else "1")
    assert store.get("alice").last_login == clock.now - dt.timedelta(seconds=30)


def test_totp_code_is_single_use(store: IdentityStore, clock: FakeClock, events: Events) -> None:
    secret = add(store)
    clock.advance(seconds=30)
    now_code = code(secret, clock)
    store.authenticate("alice", PASSWORD, now_code)
    with pytest.raises(InvalidCredentials):
        store.authenticate("alice", PASSWORD, now_code)
    previous = pyotp.TOTP(secret).at(clock.now - dt.timedelta(seconds=30))
    with pytest.raises(InvalidCredentials):  # older step than the accepted one
        store.authenticate("alice", PASSWORD, previous)
    reasons = [f["reason"] for a, f in events if a == "auth.login_failed"]
    assert reasons == ["code_reused", "code_reused"]
    clock.advance(seconds=30)  # the next step works, and a drift of one step is tolerated
    store.authenticate(
        "alice", PASSWORD, pyotp.TOTP(secret).at(clock.now + dt.timedelta(seconds=30))
    )


def test_unknown_user_costs_a_verify_and_same_error(make_store: Factory) -> None:
    hasher = CountingHasher()
    store = make_store(hasher=hasher)
    before = hasher.verifies
    with pytest.raises(InvalidCredentials, match="invalid username, password or code"):
        store.authenticate("nobody", PASSWORD, "123456")
    with pytest.raises(InvalidCredentials):
        store.authenticate("NOT A NAME", PASSWORD, "123456")
    assert hasher.verifies - before == 2


def test_lockout_after_max_failures_not_before(
    store: IdentityStore, clock: FakeClock, events: Events
) -> None:
    secret = add(store)
    for _ in range(9):
        with pytest.raises(InvalidCredentials):
            store.authenticate("alice", "Wrong-Harbor-Lamp-42", "000000")
    assert store.get("alice").failed_count == 9
    login(store, clock, "alice", secret)  # 9 failures do not lock, success resets
    assert store.get("alice").failed_count == 0
    for _ in range(9):  # code failures count too
        clock.advance(seconds=30)
        with pytest.raises(InvalidCredentials):
            store.authenticate("alice", PASSWORD, "12345")
    with pytest.raises(AccountLocked) as err:
        store.authenticate("alice", "Wrong-Harbor-Lamp-42", "000000")
    message = str(err.value)
    assert "2026-11-27" in message and "amzigo users unlock alice" in message
    assert store.get("alice").status is UserStatus.LOCKED
    with pytest.raises(AccountLocked):  # correct credentials are refused while locked
        login(store, clock, "alice", secret)
    assert ("auth.lockout", "alice") in [(a, f["user"]) for a, f in events]


def test_timed_and_admin_unlock(make_store: Factory, clock: FakeClock, events: Events) -> None:
    store = make_store(max_failures=3, lockout_minutes=15)
    secret = add(store)
    for _ in range(3):
        with pytest.raises((InvalidCredentials, AccountLocked)):
            store.authenticate("alice", "Wrong-Harbor-Lamp-42", "000000")
    clock.advance(minutes=14)
    with pytest.raises(AccountLocked):
        login(store, clock, "alice", secret)
    clock.advance(minutes=1)
    login(store, clock, "alice", secret)
    assert ("auth.unlock", "timed") in [(a, f.get("reason")) for a, f in events]
    for _ in range(3):
        with pytest.raises((InvalidCredentials, AccountLocked)):
            store.authenticate("alice", "Wrong-Harbor-Lamp-42", "000000")
    store.unlock("alice", actor="root")
    assert store.get("alice").status is UserStatus.ACTIVE
    login(store, clock, "alice", secret)
    assert ("auth.unlock", "admin", "root") in [
        (a, f.get("reason"), f.get("actor")) for a, f in events
    ]


def test_disable_revokes_sessions_and_refuses_login(
    store: IdentityStore, clock: FakeClock, events: Events
) -> None:
    secret = add(store)
    first = login(store, clock, "alice", secret)
    second = login(store, clock, "alice", secret)
    store.disable("alice", actor="root", reason="left the company")
    for session in (first, second):
        with pytest.raises(SessionExpired, match="log in again"):
            store.validate_session(session.token)
    with pytest.raises(AccountDisabled, match="ask an administrator"):
        login(store, clock, "alice", secret)
    with pytest.raises(InvalidCredentials):  # status is not revealed without the password
        store.authenticate("alice", "Wrong-Harbor-Lamp-42", "000000")
    assert ("session.revoked", 2) in [(a, f.get("count")) for a, f in events]
    store.enable("alice")
    login(store, clock, "alice", secret)


# -- passwords -------------------------------------------------------------------------------


def test_password_history_of_ten(store: IdentityStore, events: Events) -> None:
    add(store)
    history = [PASSWORD] + [f"Velvet-Harbor-Lamp-{n}x" for n in range(1, 11)]
    with pytest.raises(PasswordRejected, match="history"):
        store.set_password("alice", PASSWORD, current=PASSWORD)
    for previous, new in itertools.pairwise(history[:10]):
        store.set_password("alice", new, current=previous)
    with pytest.raises(PasswordRejected, match="last 10 passwords"):
        store.set_password("alice", PASSWORD, current=history[9])
    store.set_password("alice", history[10], current=history[9])
    store.set_password("alice", PASSWORD, current=history[10])  # 11 changes ago: allowed again
    changed = [f for a, f in events if a == "auth.password_changed"]
    assert len(changed) == 11 and {f["preset"] for f in changed} == {"company"}


def test_wrong_current_password_counts_as_failure(store: IdentityStore) -> None:
    add(store)
    with pytest.raises(InvalidCredentials):
        store.set_password("alice", "Another-Harbor-Lamp-7", current="Wrong-Harbor-Lamp-42")
    assert store.get("alice").failed_count == 1
    store.set_password("alice", "Another-Harbor-Lamp-7")  # admin reset needs no current


def test_expiry_and_warning(store: IdentityStore, clock: FakeClock) -> None:
    secret = add(store)
    assert store.password_status("alice") == (365, False)
    clock.advance(days=351)
    assert store.password_status("alice") == (14, True)
    clock.advance(days=14)
    assert store.password_status("alice")[0] == 0
    clock.advance(seconds=1)
    with pytest.raises(PasswordExpired, match="must choose a new password.*password expired"):
        login(store, clock, "alice", secret)
    store.set_password("alice", "Another-Harbor-Lamp-7", current=PASSWORD)
    assert store.password_status("alice") == (365, False)
    login(store, clock, "alice", secret, "Another-Harbor-Lamp-7")


def test_forced_change(store: IdentityStore, clock: FakeClock) -> None:
    secret = add(store)
    session = login(store, clock, "alice", secret)
    store.require_password_change("alice")
    with pytest.raises(SessionExpired):
        store.validate_session(session.token)
    with pytest.raises(PasswordExpired):
        login(store, clock, "alice", secret)
    store.set_password("alice", "Another-Harbor-Lamp-7", current=PASSWORD)
    login(store, clock, "alice", secret, "Another-Harbor-Lamp-7")


def test_one_time_password_must_be_changed_at_first_login(
    store: IdentityStore, clock: FakeClock, events: Events
) -> None:
    secret = secret_of(store.add_user("alice", ["analyst"], password=PASSWORD, one_time=True))
    user = store.get("alice")
    assert user.must_change_password and user.one_time_expires == clock.now + dt.timedelta(hours=72)
    with pytest.raises(PasswordChangeRequired, match="first login with a one-time password") as exc:
        login(store, clock, "alice", secret)
    ticket = exc.value.ticket
    assert ticket not in str(exc.value)
    assert not store._db.execute("SELECT count(*) FROM sessions").fetchone()[0]  # no session yet
    with pytest.raises(PasswordRejected):  # the policy applies; the same ticket may retry
        store.complete_password_change(ticket, PASSWORD)  # not the one-time password again
    session = store.complete_password_change(ticket, "Another-Harbor-Lamp-7")
    assert store.validate_session(session.token).user_id == "alice"
    assert (
        not store.get("alice").must_change_password and store.get("alice").one_time_expires is None
    )
    with pytest.raises(SessionExpired, match="ticket"):  # single use
        store.complete_password_change(ticket, "Third-Harbor-Lamp-99")
    changed = [f for a, f in events if a == "auth.password_changed"]
    assert changed[-1]["reason"] == "changed_at_login" and changed[-1]["one_time_password"]
    with pytest.raises(InvalidCredentials):
        login(store, clock, "alice", secret)  # the one-time password no longer works
    login(store, clock, "alice", secret, "Another-Harbor-Lamp-7")


def test_one_time_password_expires_and_tickets_too(make_store: Factory, clock: FakeClock) -> None:
    store = make_store(one_time_ttl=dt.timedelta(hours=24))
    secret = secret_of(store.add_user("bob", ["analyst"], password=PASSWORD, one_time=True))
    with pytest.raises(PasswordChangeRequired) as exc:
        login(store, clock, "bob", secret)
    clock.advance(minutes=6)  # the ticket lives 5 minutes
    with pytest.raises(SessionExpired):
        store.complete_password_change(exc.value.ticket, "Another-Harbor-Lamp-7")
    clock.advance(hours=24)
    with pytest.raises(OneTimePasswordExpired, match="ask an administrator"):
        login(store, clock, "bob", secret)
    # an admin reset makes a new one-time password; a self-chosen one is not one-time
    store.set_password("bob", "Admin-Chosen-Lamp-88", one_time=True)
    with pytest.raises(PasswordChangeRequired) as exc:
        login(store, clock, "bob", secret, "Admin-Chosen-Lamp-88")
    store.complete_password_change(exc.value.ticket, "Violet-Own-Harbor-31")
    clock.advance(days=30)
    login(store, clock, "bob", secret, "Violet-Own-Harbor-31")


def test_nist_preset(make_store: Factory, clock: FakeClock, events: Events) -> None:
    store = make_store(policy="nist-800-63b")
    assert store.policy is NIST_800_63B
    secret = secret_of(store.add_user("alice", ["analyst"], password="velvet harbor lamp orchid"))
    assert store.password_status("alice") == (None, False)
    store.set_password("alice", "velvet harbor lamp orchid", current="velvet harbor lamp orchid")
    clock.advance(days=800)
    login(store, clock, "alice", secret, "velvet harbor lamp orchid")
    assert {f["preset"] for a, f in events if "preset" in f} == {"nist-800-63b"}


def test_outdated_hash_is_upgraded_on_login(make_store: Factory, clock: FakeClock) -> None:
    secret = add(make_store())
    store = make_store(hasher=CountingHasher(time_cost=2))
    login(store, clock, "alice", secret)
    stored = store._db.execute("SELECT password_hash FROM users").fetchone()[0]
    assert ",t=2," in stored


# -- sessions --------------------------------------------------------------------------------


def test_idle_expiry(store: IdentityStore, clock: FakeClock) -> None:
    secret = add(store)
    session = login(store, clock, "alice", secret)
    for _ in range(3):
        clock.advance(minutes=29)
        assert store.validate_session(session.token).last_seen == clock.now
    clock.advance(minutes=31)
    with pytest.raises(SessionExpired, match="idle for more than 30 min"):
        store.validate_session(session.token)
    with pytest.raises(SessionExpired):  # stays expired
        store.validate_session(session.token)


def test_a_background_check_neither_refreshes_nor_ends_a_live_session(
    store: IdentityStore, clock: FakeClock
) -> None:
    """What servers use to find ended sessions (touch=False): the session stays live, its idle
    timer keeps running from the user's own last request, and idle expiry still applies."""
    secret = add(store)
    session = login(store, clock, "alice", secret)
    for _ in range(3):
        clock.advance(minutes=10)
        checked = store.validate_session(session.token, touch=False)
        assert checked.last_seen == session.last_seen
    assert store.validate_session(session.token).last_seen == clock.now  # still live
    clock.advance(minutes=31)
    with pytest.raises(SessionExpired, match="idle for more than 30 min"):
        store.validate_session(session.token, touch=False)
    with pytest.raises(SessionExpired):
        store.validate_session(session.token)


def test_absolute_expiry(store: IdentityStore, clock: FakeClock) -> None:
    secret = add(store)
    session = login(store, clock, "alice", secret)
    assert session.expires_at == session.created + dt.timedelta(hours=12)
    for _ in range(35):
        clock.advance(minutes=20)
        store.validate_session(session.token)
    clock.advance(minutes=20)
    with pytest.raises(SessionExpired, match="12 h limit"):
        store.validate_session(session.token)


def test_logout_and_revoke(store: IdentityStore, clock: FakeClock, events: Events) -> None:
    secret = add(store)
    first = login(store, clock, "alice", secret)
    second = login(store, clock, "alice", secret)
    assert first.token != second.token
    assert store.logout(first.token)
    assert not store.logout(first.token)
    with pytest.raises(SessionExpired):
        store.validate_session(first.token)
    assert store.revoke_session(second.token, actor="root")
    with pytest.raises(SessionExpired):
        store.validate_session(second.token)
    with pytest.raises(SessionExpired, match="unknown"):
        store.validate_session("not-a-token")
    revoked = [f for a, f in events if a == "session.revoked"]
    assert [f["reason"] for f in revoked] == ["logout", "revoked"]
    assert store.prune_sessions() == 2


# -- secrets never leak ----------------------------------------------------------------------


def test_secrets_absent_from_database_and_events(
    make_store: Factory, clock: FakeClock, events: Events, tmp_path: Path
) -> None:
    store = make_store()
    secret = add(store)
    session = login(store, clock, "alice", secret)
    used_code = code(secret, clock)
    store.validate_session(session.token)
    clock.advance(seconds=30)
    with pytest.raises(InvalidCredentials):
        store.authenticate("alice", "Wrong-Harbor-Lamp-42", code(secret, clock))
    new_password = "Another-Harbor-Lamp-7"
    store.set_password("alice", new_password, current=PASSWORD)
    live = db_bytes(tmp_path)  # main file plus WAL, while open
    store.close()  # checkpoints the WAL into the main file
    for raw in (live, db_bytes(tmp_path)):
        assert b"alice" in raw  # the search itself works
        for needle in (session.token, secret, PASSWORD, new_password):
            assert needle.encode() not in raw
    assert events
    for action, fields in events:
        assert not {"password", "code", "secret", "token"} & set(fields), action
        for value in fields.values():
            text = str(value)
            for needle in (session.token, secret, PASSWORD, new_password, "Wrong-Harbor"):
                assert needle not in text, action
            assert text != used_code


def test_totp_secret_needs_the_right_key(make_store: Factory, clock: FakeClock) -> None:
    secret = add(make_store())
    other = make_store(clock=clock)
    other._key_provider = lambda: b"\x01" * 32
    clock.advance(seconds=30)
    with pytest.raises(IdentityError, match="cannot decrypt the TOTP secret"):
        other.authenticate("alice", PASSWORD, code(secret, clock))


def test_required_events(store: IdentityStore, clock: FakeClock, events: Events) -> None:
    secret = add(store)
    login(store, clock, "alice", secret)
    actions = [a for a, _ in events]
    assert actions == ["user.created", "auth.mfa_enrolled", "auth.login"]
    created = events[0][1]
    assert created["preset"] == "company" and created["decision"] == "allow"
    assert events[2][1]["decision"] == "allow" and events[2][1]["user"] == "alice"


# -- access review ---------------------------------------------------------------------------


def test_access_review_rows(store: IdentityStore, clock: FakeClock) -> None:
    secret = add(store, "alice", ("admin", "analyst"))
    add(store, "bob", ("seller",))
    store.add_user("carol", ["seller"], "acme", password=PASSWORD)
    clock.advance(days=91)
    login(store, clock, "alice", secret)
    rows = {r["user"]: r for r in store.access_review_rows()}
    assert rows["alice"]["flags"] == ["over_privileged"]
    assert rows["bob"]["flags"] == ["stale", "over_privileged"]
    assert rows["carol"]["flags"] == ["stale"]
    assert rows["carol"]["tenant"] == "acme" and rows["carol"]["password_age_days"] == 91
    assert rows["alice"]["mfa_enrolled"] is True and rows["alice"]["status"] == "active"
    clock.advance(days=280)
    assert "password_expired" in store.access_review_rows()[0]["flags"]  # type: ignore[operator]
