"""The identity store: users, passwords, TOTP MFA, lockout and sessions in one SQLite file.

Every security decision is reported to `on_event(action, fields)`; fields never hold a
password, a TOTP code or secret, or a session token.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import secrets
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import NoReturn

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from . import database, totp
from . import users as names
from .errors import (
    AccountDisabled,
    AccountLocked,
    InvalidCredentials,
    InvalidUserId,
    OneTimePasswordExpired,
    PasswordChangeRequired,
    PasswordRejected,
    SessionExpired,
    UnknownUser,
    UserExists,
)
from .passwords import DEFAULT_POLICY, PasswordPolicy, check_password, expires_at, normalize, preset
from .review import review_row
from .sessions import Session, new_token, token_hash
from .users import Enrollment, User, UserStatus

Clock = Callable[[], dt.datetime]
EventSink = Callable[[str, dict[str, object]], None]
#: `users.must_change_password`: 0 no, 1 a forced change (expiry, suspected compromise),
#: 2 a one-time password (set by an administrator or the demo) that also expires by itself.
MUST_CHANGE, ONE_TIME = 1, 2
DEFAULT_ONE_TIME_HOURS = 72


def utc_now() -> dt.datetime:
    """Return the current time in UTC (the default clock)."""
    return dt.datetime.now(dt.UTC)


def _iso(when: dt.datetime | None) -> str | None:
    """Store a datetime as ISO 8601 text in UTC."""
    return None if when is None else when.astimezone(dt.UTC).isoformat(timespec="microseconds")


def _when(text: str | None) -> dt.datetime | None:
    """Read back a datetime stored by `_iso`."""
    return None if text is None else dt.datetime.fromisoformat(text)


def _duration(span: dt.timedelta) -> str:
    """Render a timeout for people: whole hours as "12 h", otherwise minutes."""
    minutes = int(span.total_seconds()) // 60
    return f"{minutes // 60} h" if minutes % 60 == 0 else f"{minutes} min"


def _at(text: str) -> dt.datetime:
    """Read back a NOT NULL datetime column."""
    return dt.datetime.fromisoformat(text)


class IdentityStore:
    """Users, argon2id passwords under a named preset, single-use TOTP, lockout and sessions."""

    def __init__(
        self,
        db_path: str | os.PathLike[str],
        key_provider: Callable[[], bytes],
        *,
        clock: Clock = utc_now,
        policy: PasswordPolicy | str = DEFAULT_POLICY,
        max_failures: int = 10,
        lockout_minutes: int = 15,
        session_idle: dt.timedelta = dt.timedelta(minutes=30),
        session_absolute: dt.timedelta = dt.timedelta(hours=12),
        hasher: PasswordHasher | None = None,
        on_event: EventSink | None = None,
        one_time_ttl: dt.timedelta = dt.timedelta(hours=DEFAULT_ONE_TIME_HOURS),
        change_ticket_ttl: dt.timedelta = dt.timedelta(minutes=5),
    ) -> None:
        if one_time_ttl <= dt.timedelta(0) or change_ticket_ttl <= dt.timedelta(0):
            raise ValueError("one_time_ttl and change_ticket_ttl must be positive")
        self.one_time_ttl = one_time_ttl
        self.change_ticket_ttl = change_ticket_ttl
        # digest of a password-change ticket -> (user id, valid until, attempts left)
        self._tickets: dict[str, tuple[str, dt.datetime, int]] = {}
        if max_failures < 1 or lockout_minutes < 1:
            raise ValueError("max_failures and lockout_minutes must be at least 1")
        if session_idle <= dt.timedelta(0) or session_absolute <= dt.timedelta(0):
            raise ValueError("session_idle and session_absolute must be positive")
        self.policy = preset(policy) if isinstance(policy, str) else policy
        self.max_failures = max_failures
        self.lockout = dt.timedelta(minutes=lockout_minutes)
        self.session_idle = session_idle
        self.session_absolute = session_absolute
        self._key_provider = key_provider
        self._clock = clock
        self._hasher = hasher if hasher is not None else PasswordHasher()
        self._on_event = on_event
        self._lock = threading.RLock()
        self._db = database.connect(db_path)
        self._db.row_factory = sqlite3.Row
        # Unknown users cost one argon2 verify too, so timing does not reveal who exists.
        self._dummy_hash = self._hasher.hash(secrets.token_urlsafe(24))

    # -- plumbing ---------------------------------------------------------------------------

    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            self._db.close()

    def __enter__(self) -> IdentityStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _now(self) -> dt.datetime:
        """Return the injected clock's time, which must be timezone-aware, in UTC."""
        now = self._clock()
        if now.tzinfo is None:
            raise ValueError("the identity clock must return timezone-aware datetimes")
        return now.astimezone(dt.UTC)

    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """Run a block in one write transaction (BEGIN IMMEDIATE ... COMMIT)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _emit(
        self,
        action: str,
        now: dt.datetime,
        user: str | None,
        *,
        actor: str | None = None,
        decision: str = "allow",
        **fields: object,
    ) -> None:
        """Report one event to the injected sink; `actor` defaults to `user`, never a secret."""
        if self._on_event is not None:
            who = user if actor is None else actor
            event = {"time": _iso(now), "actor": who, "user": user, "decision": decision}
            self._on_event(action, {**event, **fields})

    def _row(self, user_id: str) -> sqlite3.Row | None:
        """Return the raw users row of `user_id`, or None."""
        with self._lock:
            row: sqlite3.Row | None = self._db.execute(
                "SELECT * FROM users WHERE id = ?", (user_id,)
            ).fetchone()
        return row

    def _require(self, user_id: str) -> sqlite3.Row:
        """Return the users row of `user_id` or raise UnknownUser."""
        row = self._row(names.user_id(user_id))
        if row is None:
            raise UnknownUser(user_id)
        return row

    def _verify(self, password_hash: str, password: str) -> bool:
        """Check `password` against an argon2 hash (constant time inside argon2)."""
        try:
            return self._hasher.verify(password_hash, normalize(password))
        except (VerificationError, InvalidHashError):
            return False

    def _user(self, row: sqlite3.Row, now: dt.datetime) -> User:
        """Build the secret-free User of `row`; an elapsed lock shows as active."""
        status = UserStatus(row["status"])
        locked_until = _when(row["locked_until"])
        if status is UserStatus.LOCKED and locked_until is not None and now >= locked_until:
            status, locked_until = UserStatus.ACTIVE, None
        return User(
            user_id=row["id"],
            roles=tuple(json.loads(row["roles"])),
            tenant=row["tenant"],
            status=status,
            created=_at(row["created"]),
            password_changed_at=_at(row["password_changed_at"]),
            must_change_password=bool(row["must_change_password"]),
            failed_count=row["failed_count"],
            locked_until=locked_until,
            last_login=_when(row["last_login"]),
            mfa_enrolled_at=_when(row["mfa_enrolled_at"]),
            one_time_expires=self._one_time_expiry(row),
        )

    @staticmethod
    def _one_time_field(one_time: bool) -> bool | None:
        """The audit detail marking a one-time password (None, left out, otherwise)."""
        return True if one_time else None

    def _one_time_expiry(self, row: sqlite3.Row) -> dt.datetime | None:
        """When the user's one-time password stops working (None: not a one-time password)."""
        if row["must_change_password"] != ONE_TIME:
            return None
        return _at(row["password_changed_at"]) + self.one_time_ttl

    # -- users ------------------------------------------------------------------------------

    def add_user(
        self,
        user_id: str,
        roles: Iterable[str],
        tenant: str | None = None,
        *,
        password: str,
        actor: str = "system",
        one_time: bool = False,
    ) -> Enrollment:
        """Create a user with a password and TOTP MFA; the Enrollment is the only copy.

        `one_time`: the password was chosen by someone else (an administrator, the demo); it
        must be changed at first login and stops working after `one_time_ttl` (72 h)."""
        uid, role_list, tenant_id = names.user_id(user_id), names.roles(roles), names.tenant(tenant)
        if self._row(uid) is not None:
            raise UserExists(uid)
        check_password(password, self.policy, context=(uid,))
        password_hash = self._hasher.hash(normalize(password))
        secret = totp.new_secret()
        sealed = totp.seal_secret(self._key_provider, uid, secret)
        now = self._now()
        try:
            with self._tx() as db:
                db.execute(
                    "INSERT INTO users (id, roles, tenant, status, created, password_hash,"
                    " password_changed_at, totp_secret, mfa_enrolled_at, must_change_password)"
                    " VALUES (?, ?, ?, 'active', ?, ?, ?, ?, ?, ?)",
                    (
                        uid,
                        json.dumps(role_list),
                        tenant_id,
                        _iso(now),
                        password_hash,
                        _iso(now),
                        sealed,
                        _iso(now),
                        ONE_TIME if one_time else 0,
                    ),
                )
                self._remember_password(db, uid, password_hash, now)
        except sqlite3.IntegrityError:
            raise UserExists(uid) from None
        self._emit(
            "user.created",
            now,
            uid,
            actor=actor,
            roles=list(role_list),
            tenant=tenant_id,
            preset=self.policy.name,
            one_time_password=self._one_time_field(one_time),
        )
        self._emit("auth.mfa_enrolled", now, uid, actor=actor, reason="created")
        return Enrollment(uid, totp.provisioning_uri(uid, secret))

    def reset_mfa(self, user_id: str, *, actor: str = "system") -> Enrollment:
        """Replace the user's TOTP secret (lost device); return the new one-time Enrollment."""
        uid = self._require(user_id)["id"]
        secret = totp.new_secret()
        sealed = totp.seal_secret(self._key_provider, uid, secret)
        now = self._now()
        with self._tx() as db:
            db.execute(
                "UPDATE users SET totp_secret = ?, last_totp_step = NULL, mfa_enrolled_at = ?"
                " WHERE id = ?",
                (sealed, _iso(now), uid),
            )
        self._emit("auth.mfa_enrolled", now, uid, actor=actor, reason="reset")
        return Enrollment(uid, totp.provisioning_uri(uid, secret))

    def get(self, user_id: str) -> User:
        """Return the user `user_id` (without secrets) or raise UnknownUser."""
        return self._user(self._require(user_id), self._now())

    def list_users(self) -> list[User]:
        """Return every user, ordered by id."""
        now = self._now()
        with self._lock:
            rows = self._db.execute("SELECT * FROM users ORDER BY id").fetchall()
        return [self._user(row, now) for row in rows]

    def count(self) -> int:
        """How many users the store holds (any status)."""
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM users").fetchone()[0])

    def policy_seen(self, user_id: str) -> int:
        """The newest data-policy version `user_id` was shown (0: none yet)."""
        with self._lock:
            row = self._db.execute(
                "SELECT version FROM policy_seen WHERE user_id = ?", (user_id,)
            ).fetchone()
        return int(row[0]) if row else 0

    def mark_policy_seen(self, user_id: str, version: int) -> None:
        """Record that `user_id` was shown data-policy version `version` (never goes back)."""
        row = self._require(user_id)
        with self._tx() as db:
            db.execute(
                "INSERT INTO policy_seen VALUES (?, ?, ?) ON CONFLICT (user_id) DO UPDATE SET "
                "version = max(version, excluded.version), seen_at = excluded.seen_at",
                (row["id"], int(version), _iso(self._now())),
            )

    def set_roles(self, user_id: str, roles: Iterable[str], *, actor: str = "system") -> None:
        """Replace the roles of `user_id`; live sessions see the new roles at once."""
        row, role_list = self._require(user_id), names.roles(roles)
        now = self._now()
        with self._tx() as db:
            db.execute(
                "UPDATE users SET roles = ? WHERE id = ?", (json.dumps(role_list), row["id"])
            )
        self._emit(
            "user.roles_changed",
            now,
            row["id"],
            actor=actor,
            before=json.loads(row["roles"]),
            roles=list(role_list),
        )

    def disable(self, user_id: str, *, actor: str = "system", reason: str = "") -> None:
        """Disable (deprovision) `user_id` and revoke every one of its sessions at once."""
        uid = self._require(user_id)["id"]
        now = self._now()
        with self._tx() as db:
            db.execute(
                "UPDATE users SET status = 'disabled', locked_until = NULL WHERE id = ?", (uid,)
            )
            count = self._revoke_all(db, uid, now, "user_disabled")
        self._emit("user.disabled", now, uid, actor=actor, reason=reason)
        self._emit("session.revoked", now, uid, actor=actor, reason="user_disabled", count=count)

    def enable(self, user_id: str, *, actor: str = "system") -> None:
        """Re-enable a disabled (or locked) user, clearing its failure count."""
        uid = self._require(user_id)["id"]
        now = self._now()
        with self._tx() as db:
            db.execute(
                "UPDATE users SET status = 'active', failed_count = 0, locked_until = NULL"
                " WHERE id = ?",
                (uid,),
            )
        self._emit("user.enabled", now, uid, actor=actor)

    def unlock(self, user_id: str, *, actor: str = "system") -> None:
        """Admin unlock: end a lockout now and clear the failure count (disabled stays so)."""
        uid = self._require(user_id)["id"]
        now = self._now()
        with self._tx() as db:
            db.execute(
                "UPDATE users SET failed_count = 0, locked_until = NULL,"
                " status = CASE status WHEN 'locked' THEN 'active' ELSE status END WHERE id = ?",
                (uid,),
            )
        self._emit("auth.unlock", now, uid, actor=actor, reason="admin")

    # -- passwords --------------------------------------------------------------------------

    def _remember_password(
        self, db: sqlite3.Connection, uid: str, password_hash: str, now: dt.datetime
    ) -> None:
        """Add a hash to the user's history and keep only as many as the policy needs."""
        if self.policy.history > 0:
            db.execute(
                "INSERT INTO password_history (user_id, hash, created) VALUES (?, ?, ?)",
                (uid, password_hash, _iso(now)),
            )
        db.execute(
            "DELETE FROM password_history WHERE user_id = ? AND id NOT IN"
            " (SELECT id FROM password_history WHERE user_id = ? ORDER BY id DESC LIMIT ?)",
            (uid, uid, self.policy.history),
        )

    def _check_history(self, row: sqlite3.Row, new: str) -> None:
        """Refuse `new` if it is one of the last `policy.history` passwords."""
        if self.policy.history <= 0:
            return
        with self._lock:
            hashes = [
                r["hash"]
                for r in self._db.execute(
                    "SELECT hash FROM password_history WHERE user_id = ? ORDER BY id DESC LIMIT ?",
                    (row["id"], self.policy.history),
                )
            ]
        reused = False
        for old in {row["password_hash"], *hashes}:
            reused |= self._verify(old, new)
        if reused:
            raise PasswordRejected(
                "history",
                f"the {self.policy.name} policy forbids reusing any of your last "
                f"{self.policy.history} passwords; choose a new one",
            )

    def set_password(
        self,
        user_id: str,
        new: str,
        current: str | None = None,
        *,
        actor: str | None = None,
        one_time: bool = False,
    ) -> None:
        """Change a password: self-service with `current`, admin reset without it.

        Works on an expired password; revokes the user's sessions; a wrong `current` counts
        as a failed login. `one_time` (admin reset only): the user must change it at first
        login, and it stops working after `one_time_ttl`.
        """
        row = self._require(user_id)
        uid = row["id"]
        now = self._now()
        if current is not None:
            row = self._check_usable(row, now)
            if row["status"] == UserStatus.DISABLED:
                raise AccountDisabled(uid)
            if not self._verify(row["password_hash"], current):
                self._fail(uid, now, "bad_current_password")
        check_password(new, self.policy, context=(uid,))
        self._check_history(row, new)
        new_hash = self._hasher.hash(normalize(new))
        with self._tx() as db:
            db.execute(
                "UPDATE users SET password_hash = ?, password_changed_at = ?,"
                " must_change_password = ?, failed_count = CASE WHEN ? THEN 0 ELSE failed_count"
                " END WHERE id = ?",
                (
                    new_hash,
                    _iso(now),
                    ONE_TIME if one_time and current is None else 0,
                    current is not None,
                    uid,
                ),
            )
            self._remember_password(db, uid, new_hash, now)
            count = self._revoke_all(db, uid, now, "password_changed")
        self._emit(
            "auth.password_changed",
            now,
            uid,
            actor=actor or (uid if current is not None else "system"),
            reason="self_service" if current is not None else "admin_reset",
            preset=self.policy.name,
            one_time_password=self._one_time_field(one_time and current is None),
        )
        if count:
            self._emit(
                "session.revoked",
                now,
                uid,
                actor=actor or uid,
                reason="password_changed",
                count=count,
            )

    def require_password_change(self, user_id: str, *, actor: str = "system") -> None:
        """Force a password change at next login (e.g. on evidence of compromise)."""
        uid = self._require(user_id)["id"]
        now = self._now()
        with self._tx() as db:
            db.execute("UPDATE users SET must_change_password = 1 WHERE id = ?", (uid,))
            count = self._revoke_all(db, uid, now, "password_change_required")
        self._emit("auth.password_change_required", now, uid, actor=actor, preset=self.policy.name)
        if count:
            self._emit(
                "session.revoked",
                now,
                uid,
                actor=actor,
                reason="password_change_required",
                count=count,
            )

    def password_status(self, user_id: str) -> tuple[int | None, bool]:
        """Return (days until the password expires or None if never, whether to warn)."""
        row = self._require(user_id)
        now = self._now()
        if row["must_change_password"]:
            return 0, True
        expiry = expires_at(self.policy, _at(row["password_changed_at"]))
        if expiry is None:
            return None, False
        days_left = (expiry - now).days
        return days_left, days_left <= self.policy.warn_days

    # -- authentication ---------------------------------------------------------------------

    def _check_usable(self, row: sqlite3.Row, now: dt.datetime) -> sqlite3.Row:
        """Raise AccountLocked during a lockout; lift an elapsed one (timed unlock)."""
        if row["status"] != UserStatus.LOCKED:
            return row
        until = _when(row["locked_until"])
        if until is not None and now < until:
            self._emit("auth.login_failed", now, row["id"], decision="deny", reason="locked")
            raise AccountLocked(row["id"], until)
        with self._tx() as db:
            db.execute(
                "UPDATE users SET status = 'active', failed_count = 0, locked_until = NULL"
                " WHERE id = ? AND status = 'locked'",
                (row["id"],),
            )
        self._emit("auth.unlock", now, row["id"], actor="system", reason="timed")
        fresh = self._row(row["id"])
        assert fresh is not None  # users are never deleted
        return fresh

    def _fail(self, uid: str, now: dt.datetime, reason: str) -> NoReturn:
        """Count one failure, lock at `max_failures`, report it, and raise."""
        with self._tx() as db:
            count = db.execute(
                "UPDATE users SET failed_count = failed_count + 1 WHERE id = ?"
                " RETURNING failed_count",
                (uid,),
            ).fetchone()[0]
            until = now + self.lockout
            locked = count >= self.max_failures
            if locked:
                db.execute(
                    "UPDATE users SET status = 'locked', locked_until = ?"
                    " WHERE id = ? AND status = 'active'",
                    (_iso(until), uid),
                )
        self._emit(
            "auth.login_failed", now, uid, decision="deny", reason=reason, failed_count=count
        )
        if locked:
            self._emit(
                "auth.lockout",
                now,
                uid,
                actor="system",
                decision="deny",
                reason="too_many_failures",
                failed_count=count,
                locked_until=_iso(until),
            )
            raise AccountLocked(uid, until)
        raise InvalidCredentials()

    def authenticate(self, user_id: str, password: str, code: str) -> Session:
        """Check password and TOTP code (both, every time) and open a new session."""
        now = self._now()
        try:
            row = self._row(names.user_id(user_id))
        except InvalidUserId:
            row = None
        if row is None:
            self._verify(self._dummy_hash, password)
            # The attempted name may be a mistyped password: log only a short hash of it.
            attempted = hashlib.sha256(str(user_id).encode()).hexdigest()[:16]
            self._emit(
                "auth.login_failed",
                now,
                None,
                decision="deny",
                attempted_user_hash=attempted,
                reason="unknown_user",
            )
            raise InvalidCredentials()
        uid = row["id"]
        row = self._check_usable(row, now)
        password_ok = self._verify(row["password_hash"], password)
        step: int | None = None
        secret = None
        if row["totp_secret"] is not None:
            secret = totp.open_secret(self._key_provider, uid, row["totp_secret"])
            step = totp.matching_step(secret, code, now, row["last_totp_step"])
        if row["status"] == UserStatus.DISABLED:
            self._emit("auth.login_failed", now, uid, decision="deny", reason="disabled")
            if password_ok and step is not None:
                raise AccountDisabled(uid)
            raise InvalidCredentials()
        if not password_ok:
            self._fail(uid, now, "bad_password")
        if step is None:
            replay = secret is not None and totp.matching_step(secret, code, now, None) is not None
            self._fail(uid, now, "code_reused" if replay else "bad_code")
        return self._open_session(row, password, step, now)

    def _open_session(
        self, row: sqlite3.Row, password: str, step: int, now: dt.datetime
    ) -> Session:
        """Consume the TOTP step, reset failures, check expiry and create the session."""
        uid = row["id"]
        expiry = expires_at(self.policy, _at(row["password_changed_at"]))
        expired = bool(row["must_change_password"]) or (expiry is not None and now >= expiry)
        rehash = None
        if not expired and self._hasher.check_needs_rehash(row["password_hash"]):
            rehash = self._hasher.hash(normalize(password))
        token = new_token()
        session_id: int | None = None
        with self._tx() as db:
            claimed = db.execute(
                "UPDATE users SET last_totp_step = ?, failed_count = 0 WHERE id = ?"
                " AND (last_totp_step IS NULL OR last_totp_step < ?)",
                (step, uid, step),
            ).rowcount
            if claimed and not expired:
                if rehash is not None:
                    db.execute("UPDATE users SET password_hash = ? WHERE id = ?", (rehash, uid))
                db.execute("UPDATE users SET last_login = ? WHERE id = ?", (_iso(now), uid))
                session_id = db.execute(
                    "INSERT INTO sessions (token_hash, user_id, created, last_seen, expires_at)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (
                        token_hash(token),
                        uid,
                        _iso(now),
                        _iso(now),
                        _iso(now + self.session_absolute),
                    ),
                ).lastrowid
        if not claimed:  # a concurrent login used this code first
            self._fail(uid, now, "code_reused")
        if expired:
            one_time_until = self._one_time_expiry(row)
            if one_time_until is not None and now >= one_time_until:
                self._emit(
                    "auth.login_failed",
                    now,
                    uid,
                    decision="deny",
                    reason="one_time_password_expired",
                )
                raise OneTimePasswordExpired(uid, one_time_until)
            self._emit("auth.login_failed", now, uid, decision="deny", reason="password_expired")
            raise self._change_ticket(row, expiry, now)
        assert session_id is not None
        self._emit("auth.login", now, uid, session=session_id, rehashed=rehash is not None)
        return self._session(row, token, session_id, now)

    def _session(self, row: sqlite3.Row, token: str, session_id: int, now: dt.datetime) -> Session:
        return Session(
            token=token,
            session_id=session_id,
            user_id=row["id"],
            roles=tuple(json.loads(row["roles"])),
            tenant=row["tenant"],
            created=now,
            last_seen=now,
            expires_at=now + self.session_absolute,
        )

    def _change_ticket(
        self, row: sqlite3.Row, expiry: dt.datetime | None, now: dt.datetime
    ) -> PasswordChangeRequired:
        """A single-use ticket to finish this login with a new password (the password and the
        TOTP code were just checked; the code is spent, so no second code is asked for)."""
        uid = row["id"]
        why = {
            ONE_TIME: "first login with a one-time password",
            MUST_CHANGE: "a password change is required",
        }.get(row["must_change_password"], "the password expired")
        ticket = new_token()
        with self._lock:
            self._tickets = {k: v for k, v in self._tickets.items() if v[1] > now}
            self._tickets[token_hash(ticket)] = (uid, now + self.change_ticket_ttl, 5)
        minutes = max(1, int(self.change_ticket_ttl.total_seconds() // 60))
        since = None if row["must_change_password"] else expiry
        return PasswordChangeRequired(uid, since, ticket, why, minutes)

    def complete_password_change(self, ticket: str, new: str) -> Session:
        """Finish a login that raised PasswordChangeRequired: set `new` (policy and history
        checked; a rejected password may be retried with the same ticket, 5 tries) and open
        the session. The ticket is single use and expires after `change_ticket_ttl`."""
        now = self._now()
        digest = token_hash(ticket)
        with self._lock:
            entry = self._tickets.get(digest)
            if entry is None or entry[1] <= now:
                self._tickets.pop(digest, None)
                raise SessionExpired("password-change ticket expired, used or unknown")
            uid, until, tries = entry
            if tries <= 1:
                del self._tickets[digest]
            else:
                self._tickets[digest] = (uid, until, tries - 1)
        row = self._require(uid)
        row = self._check_usable(row, now)
        if row["status"] == UserStatus.DISABLED:
            raise AccountDisabled(uid)
        check_password(new, self.policy, context=(uid,))
        self._check_history(row, new)
        new_hash = self._hasher.hash(normalize(new))
        token = new_token()
        with self._lock:
            self._tickets.pop(digest, None)  # used
        with self._tx() as db:
            db.execute(
                "UPDATE users SET password_hash = ?, password_changed_at = ?,"
                " must_change_password = 0, failed_count = 0, last_login = ? WHERE id = ?",
                (new_hash, _iso(now), _iso(now), uid),
            )
            self._remember_password(db, uid, new_hash, now)
            self._revoke_all(db, uid, now, "password_changed")
            session_id = db.execute(
                "INSERT INTO sessions (token_hash, user_id, created, last_seen, expires_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (token_hash(token), uid, _iso(now), _iso(now), _iso(now + self.session_absolute)),
            ).lastrowid
        assert session_id is not None
        self._emit(
            "auth.password_changed",
            now,
            uid,
            reason="changed_at_login",
            preset=self.policy.name,
            one_time_password=self._one_time_field(row["must_change_password"] == ONE_TIME),
        )
        self._emit("auth.login", now, uid, session=session_id, rehashed=False)
        return self._session(row, token, session_id, now)

    # -- sessions ---------------------------------------------------------------------------

    def _revoke_all(self, db: sqlite3.Connection, uid: str, now: dt.datetime, reason: str) -> int:
        """Revoke every live session of `uid` inside the caller's transaction."""
        return db.execute(
            "UPDATE sessions SET revoked_at = ?, revoked_reason = ?"
            " WHERE user_id = ? AND revoked_at IS NULL",
            (_iso(now), reason, uid),
        ).rowcount

    def validate_session(self, token: str, *, touch: bool = True) -> Session:
        """Return the live session of `token`, refreshing its idle timer (unless `touch` is
        False: a server checking in the background must not keep an idle session alive);
        else SessionExpired."""
        now = self._now()
        with self._lock:
            row = self._db.execute(
                "SELECT s.*, u.roles, u.tenant, u.status FROM sessions s"
                " JOIN users u ON u.id = s.user_id WHERE s.token_hash = ?",
                (token_hash(token),),
            ).fetchone()
        if row is None:
            raise SessionExpired("is unknown")
        if row["revoked_at"] is not None or row["status"] == UserStatus.DISABLED:
            raise SessionExpired("was ended (logged out, revoked or account disabled)")
        expires = _at(row["expires_at"])
        last_seen = _at(row["last_seen"])
        reason = None
        if now >= expires:
            reason = "absolute_timeout"
            message = f"reached its {_duration(self.session_absolute)} limit"
        elif now - last_seen > self.session_idle:
            reason = "idle_timeout"
            message = f"was idle for more than {_duration(self.session_idle)}"
        with self._tx() as db:
            if reason is not None:
                db.execute(
                    "UPDATE sessions SET revoked_at = ?, revoked_reason = ? WHERE id = ?",
                    (_iso(now), reason, row["id"]),
                )
            elif touch:
                db.execute("UPDATE sessions SET last_seen = ? WHERE id = ?", (_iso(now), row["id"]))
        if reason is not None:
            self._emit(
                "session.expired",
                now,
                row["user_id"],
                actor="system",
                decision="deny",
                session=row["id"],
                reason=reason,
            )
            raise SessionExpired(message)
        return Session(
            token=token,
            session_id=row["id"],
            user_id=row["user_id"],
            roles=tuple(json.loads(row["roles"])),
            tenant=row["tenant"],
            created=_at(row["created"]),
            last_seen=now if touch else last_seen,
            expires_at=expires,
        )

    def revoke_session(
        self, token: str, *, actor: str | None = None, reason: str = "revoked"
    ) -> bool:
        """Revoke the session of `token`; return False if it was unknown or already ended."""
        now = self._now()
        with self._tx() as db:
            row = db.execute(
                "UPDATE sessions SET revoked_at = ?, revoked_reason = ?"
                " WHERE token_hash = ? AND revoked_at IS NULL RETURNING id, user_id",
                (_iso(now), reason, token_hash(token)),
            ).fetchone()
        if row is None:
            return False
        self._emit(
            "session.revoked",
            now,
            row["user_id"],
            actor=actor or row["user_id"],
            session=row["id"],
            reason=reason,
            count=1,
        )
        return True

    def revoke_session_id(self, session_id: int, *, actor: str, reason: str) -> str | None:
        """Revoke one session by its id (incident isolation of a stolen token); the user whose
        session it was, or None if it was unknown or already ended."""
        now = self._now()
        with self._tx() as db:
            row = db.execute(
                "UPDATE sessions SET revoked_at = ?, revoked_reason = ?"
                " WHERE id = ? AND revoked_at IS NULL RETURNING id, user_id",
                (_iso(now), "incident", session_id),
            ).fetchone()
        if row is None:
            return None
        self._emit(
            "session.revoked", now, row["user_id"], actor=actor, session=row["id"],
            reason=reason, count=1,
        )  # fmt: skip
        return str(row["user_id"])

    def session_owner(self, token: str) -> str | None:
        """The user of a session token, live or not (None if unknown)."""
        with self._lock:
            row = self._db.execute(
                "SELECT user_id FROM sessions WHERE token_hash = ?", (token_hash(token),)
            ).fetchone()
        return None if row is None else str(row["user_id"])

    def logout(self, token: str) -> bool:
        """End the caller's own session; return False if it was already ended."""
        return self.revoke_session(token, reason="logout")

    def revoke_user_sessions(self, user_id: str, *, actor: str = "system") -> int:
        """Revoke every live session of `user_id` (log out everywhere); return how many."""
        uid = self._require(user_id)["id"]
        now = self._now()
        with self._tx() as db:
            count = self._revoke_all(db, uid, now, "revoked")
        self._emit("session.revoked", now, uid, actor=actor, reason="revoked", count=count)
        return count

    def prune_sessions(self) -> int:
        """Delete ended sessions (revoked, or past absolute or idle expiry); return how many."""
        now = self._now()
        with self._tx() as db:
            return db.execute(
                "DELETE FROM sessions WHERE revoked_at IS NOT NULL OR expires_at <= ?"
                " OR last_seen < ?",
                (_iso(now), _iso(now - self.session_idle)),
            ).rowcount

    # -- review -----------------------------------------------------------------------------

    def access_review_rows(self) -> list[dict[str, object]]:
        """Return one access-review row per user (roles, status, age, MFA, flags)."""
        now = self._now()
        return [review_row(user, now, self.policy) for user in self.list_users()]
