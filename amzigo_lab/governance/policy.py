"""The access policy as data: purposes, roles, and the one `decide` function.

The policy is a TOML file (`policy.toml` shipped in this package, overridable by
`<home>/policy.toml`) loaded into frozen objects. `Policy.decide(user, dataset, tenant, purpose)`
and `Policy.access(user, dataset, purpose)` are pure functions of the policy and their
arguments: no I/O, no clock. The session builds its views from `access`; tests and the docs
read the same objects.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from amzigo_lab.errors import ConfigError

TenantScope = Literal["all", "granted", "bound"]
_SCOPES: tuple[TenantScope, ...] = ("all", "granted", "bound")
_RIGHTS = ("manage_users", "read_audit", "access_review")
#: The administrative rights a role may hold (checked by `Governance.require_right`).
RIGHTS = _RIGHTS
POLICY_FILE = "policy.toml"


class DatasetLike(Protocol):
    """What the policy needs to know of a dataset (a `DatasetSpec` fits)."""

    @property
    def name(self) -> str:
        """The dataset name."""
        ...

    @property
    def pii(self) -> bool:
        """Whether any column holds personal data."""
        ...


@dataclass(frozen=True)
class DatasetRef:
    """A dataset named by hand (tests, docs): name and PII flag."""

    name: str
    pii: bool = False


@dataclass(frozen=True)
class Purpose:
    """A purpose of processing; `pii` says whether it may justify reading buyer PII."""

    name: str
    description: str
    pii: bool


@dataclass(frozen=True)
class Role:
    """A role: the datasets, tenants and purposes it covers, and its administrative rights."""

    name: str
    description: str
    datasets: frozenset[str]
    tenants: TenantScope
    purposes: frozenset[str]
    excluded: frozenset[str] = frozenset()
    pii: bool = False
    exclusive: bool = False
    manage_users: bool = False
    read_audit: bool = False
    access_review: bool = False

    def covers(self, dataset: DatasetLike) -> bool:
        """Whether the role names `dataset` ("*" covers every non-PII dataset only)."""
        if dataset.name in self.excluded:
            return False
        if dataset.pii:
            return self.pii and dataset.name in self.datasets
        return "*" in self.datasets or dataset.name in self.datasets


@dataclass(frozen=True)
class Principal:
    """A user as the policy sees them: id, roles, tenant binding and tenant grants."""

    user_id: str
    roles: tuple[str, ...]
    tenant: str | None = None
    grants: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True)
class Decision:
    """The outcome of a check; `missing` names what was lacking (role, purpose, grant...)."""

    allowed: bool
    reason: str
    missing: str = ""

    def __bool__(self) -> bool:
        return self.allowed


@dataclass(frozen=True)
class Access:
    """Whether a dataset is readable for a purpose, and which tenants (None: every tenant)."""

    allowed: bool
    tenants: frozenset[str] | None
    reason: str
    missing: str = ""

    def decision(self) -> Decision:
        """This access as a Decision."""
        return Decision(self.allowed, self.reason, self.missing)


def _names(items: Iterable[str]) -> str:
    return ", ".join(sorted(items)) or "(none)"


@dataclass(frozen=True)
class Policy:
    """A loaded policy. Build with `Policy.load(path)` or `load_policy(home)`."""

    version: int
    purposes: Mapping[str, Purpose]
    roles: Mapping[str, Role]
    source: str
    sha256: str
    text: str = field(default="", repr=False, compare=False)
    """The TOML text the policy was parsed from (what `archive_policy` keeps)."""

    # -- loading ----------------------------------------------------------------------------
    @classmethod
    def from_toml(cls, text: str, source: str) -> Policy:
        """Parse and validate policy TOML; ConfigError names the file and the bad key."""
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{source}: not valid TOML ({exc}); fix the policy file") from None
        digest = hashlib.sha256(text.encode()).hexdigest()

        def bad(where: str, what: str) -> ConfigError:
            return ConfigError(f"{source}: {where}: {what}; fix the policy file")

        version = data.get("version")
        if version != 1:
            raise bad("version", f"expected 1, got {version!r}")
        purposes: dict[str, Purpose] = {}
        for name, spec in _table(data, "purposes", source).items():
            if not isinstance(spec, dict) or not isinstance(spec.get("pii", False), bool):
                raise bad(f"purposes.{name}", "expected a table with pii = true/false")
            purposes[name] = Purpose(name, str(spec.get("description", "")), spec.get("pii", False))
        roles: dict[str, Role] = {}
        for name, spec in _table(data, "roles", source).items():
            where = f"roles.{name}"
            if not isinstance(spec, dict):
                raise bad(where, "expected a table")
            unknown = set(spec) - {
                "description", "datasets", "exclude", "tenants", "purposes", "pii", "exclusive",
                *_RIGHTS,
            }  # fmt: skip
            if unknown:
                raise bad(where, f"unknown key(s) {_names(unknown)}")
            scope = spec.get("tenants", "granted")
            if scope not in _SCOPES:
                raise bad(f"{where}.tenants", f"expected one of {', '.join(_SCOPES)}")
            role_purposes = _str_list(spec.get("purposes", []), bad, f"{where}.purposes")
            if missing := set(role_purposes) - set(purposes):
                raise bad(f"{where}.purposes", f"unknown purpose(s) {_names(missing)}")
            flags = {k: spec.get(k, False) for k in ("pii", "exclusive", *_RIGHTS)}
            for k, v in flags.items():
                if not isinstance(v, bool):
                    raise bad(f"{where}.{k}", "expected true or false")
            roles[name] = Role(
                name=name,
                description=str(spec.get("description", "")),
                datasets=frozenset(_str_list(spec.get("datasets", []), bad, f"{where}.datasets")),
                tenants=scope,
                purposes=frozenset(role_purposes),
                excluded=frozenset(_str_list(spec.get("exclude", []), bad, f"{where}.exclude")),
                **flags,
            )
        return cls(version, purposes, roles, source, digest, text)

    @classmethod
    def load(cls, path: Path) -> Policy:
        """Load a policy file."""
        return cls.from_toml(path.read_text(encoding="utf-8"), str(path))

    @classmethod
    def default(cls) -> Policy:
        """The policy shipped with amzigo-lab."""
        text = importlib.resources.files(__package__).joinpath(POLICY_FILE)
        return cls.from_toml(
            text.read_text(encoding="utf-8"), f"amzigo_lab/governance/{POLICY_FILE}"
        )

    # -- questions --------------------------------------------------------------------------
    @property
    def pii_purposes(self) -> tuple[str, ...]:
        """Purposes that may justify reading PII."""
        return tuple(sorted(p.name for p in self.purposes.values() if p.pii))

    def effective_roles(self, user: Principal) -> list[Role]:
        """The user's known roles; an exclusive role (seller) masks every other one."""
        known = [self.roles[r] for r in user.roles if r in self.roles]
        exclusive = [r for r in known if r.exclusive]
        return exclusive[:1] if exclusive else known

    def has_right(self, user: Principal, right: str) -> bool:
        """Whether one of the user's roles has an administrative right (e.g. read_audit)."""
        if right not in _RIGHTS:
            raise ValueError(f"unknown right {right!r}; known: {', '.join(_RIGHTS)}")
        return any(getattr(r, right) for r in self.effective_roles(user))

    def check_purpose(self, user: Principal, purpose: str) -> Decision:
        """Whether the user may state `purpose` at all."""
        roles = self.effective_roles(user)
        if purpose not in self.purposes:
            return Decision(
                False,
                f"unknown purpose {purpose!r}; state one of: {_names(self.purposes)}",
                "purpose",
            )
        if not roles:
            return Decision(
                False,
                f"user {user.user_id} has no role known to the policy ({_names(user.roles)}); "
                "ask an administrator to assign one",
                "role",
            )
        if not any(purpose in r.purposes for r in roles):
            allowed = {p for r in roles for p in r.purposes}
            return Decision(
                False,
                f"purpose {purpose!r} is not allowed for role(s) {_names(r.name for r in roles)}; "
                f"connect with one of: {_names(allowed)}, or ask an administrator for a role "
                "that covers it",
                "purpose",
            )
        return Decision(True, f"purpose {purpose} allowed")

    def access(self, user: Principal, dataset: DatasetLike, purpose: str) -> Access:
        """Whether `dataset` is readable for `purpose`, and for which tenants."""
        check = self.check_purpose(user, purpose)
        if not check.allowed:
            return Access(False, frozenset(), check.reason, check.missing)
        roles = self.effective_roles(user)
        names = _names(r.name for r in roles)
        if dataset.pii:
            pii_roles = [r for r in roles if r.covers(dataset)]
            if not pii_roles:
                exclusive = any(r.exclusive for r in roles)
                why = " (a seller account never reads PII)" if exclusive else ""
                return Access(
                    False,
                    frozenset(),
                    f"dataset {dataset.name!r} holds buyer PII: it needs a PII role naming it "
                    f"(e.g. pii_processor) and a PII purpose ({_names(self.pii_purposes)}); "
                    f"{user.user_id} has role(s) {names}{why}; ask an administrator for the "
                    "role if your work needs it",
                    "pii_role",
                )
            if not self.purposes[purpose].pii:
                return Access(
                    False,
                    frozenset(),
                    f"dataset {dataset.name!r} holds buyer PII and purpose {purpose!r} does not "
                    f"allow PII; reconnect with a PII purpose ({_names(self.pii_purposes)}) if "
                    "your task is one of them",
                    "pii_purpose",
                )
            candidates = [r for r in pii_roles if purpose in r.purposes]
        else:
            candidates = [r for r in roles if r.covers(dataset) and purpose in r.purposes]
        if not candidates:
            return Access(
                False,
                frozenset(),
                f"no role of {user.user_id} ({names}) may read dataset {dataset.name!r} for "
                f"purpose {purpose!r}; ask an administrator for a role that includes it",
                "role",
            )
        tenants: set[str] = set()
        for role in candidates:
            if role.tenants == "all":
                return Access(True, None, f"role {role.name} reads every tenant")
            if role.tenants == "granted":
                tenants |= user.grants
            elif user.tenant:
                tenants.add(user.tenant)
        if not tenants:
            scope = {r.tenants for r in candidates}
            if scope == {"bound"}:
                reason = (
                    f"seller account {user.user_id} is not bound to a tenant; ask an "
                    "administrator to recreate it with --tenant"
                )
            else:
                reason = (
                    f"{user.user_id} has no tenant grant; ask an administrator to run "
                    f"`amzigo users grant {user.user_id} --tenant TENANT`"
                )
            return Access(False, frozenset(), reason, "grant")
        return Access(True, frozenset(tenants), f"tenants {_names(tenants)}")

    def decide(self, user: Principal, dataset: DatasetLike, tenant: str, purpose: str) -> Decision:
        """Whether `user` may read `tenant`'s rows of `dataset` for `purpose` (pure)."""
        access = self.access(user, dataset, purpose)
        if not access.allowed:
            return access.decision()
        if access.tenants is None or tenant in access.tenants:
            return Decision(True, f"{dataset.name} of tenant {tenant} for {purpose}")
        roles = self.effective_roles(user)
        if any(r.tenants == "bound" for r in roles) and user.tenant:
            return Decision(
                False,
                f"seller account {user.user_id} is bound to tenant {user.tenant!r}; tenant "
                f"{tenant!r} belongs to another seller",
                "grant",
            )
        return Decision(
            False,
            f"{user.user_id} has no grant for tenant {tenant!r}; ask an administrator to run "
            f"`amzigo users grant {user.user_id} --tenant {tenant}`",
            "grant",
        )


def decide(
    policy: Policy, user: Principal, dataset: DatasetLike, tenant: str, purpose: str
) -> Decision:
    """Module-level form of `Policy.decide`."""
    return policy.decide(user, dataset, tenant, purpose)


def _table(data: Mapping[str, Any], key: str, source: str) -> dict[str, Any]:
    value = data.get(key)
    if not isinstance(value, dict) or not value:
        raise ConfigError(f"{source}: [{key}] is missing or empty; fix the policy file")
    return value


def _str_list(value: Any, bad: Any, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise bad(where, "expected a list of strings")
    return list(value)


def policy_path(home: Path) -> Path | None:
    """The home's policy override, if there is one."""
    path = home / POLICY_FILE
    return path if path.exists() else None


def load_policy(home: Path) -> Policy:
    """The home's policy: `<home>/policy.toml` if present, else the shipped default."""
    path = policy_path(home)
    return Policy.load(path) if path is not None else Policy.default()


POLICY_HISTORY = "policy-history"
"""`<home>/policy-history/<sha256>.toml`: every policy version that was ever in force, so an
audit event can be judged by the policy of its time (the audit stream names the digest)."""


def archive_policy(home: Path, policy: Policy) -> Path | None:
    """Keep `policy`'s text under its digest (once); None if it has no text."""
    if not policy.text:
        return None
    folder = home / POLICY_HISTORY
    folder.mkdir(mode=0o700, exist_ok=True)
    path = folder / f"{policy.sha256}.toml"
    if not path.exists():
        tmp = path.with_suffix(".tmp")
        tmp.write_text(policy.text, encoding="utf-8")
        tmp.replace(path)
    return path


def archived_policy(home: Path, digest: str) -> Policy | None:
    """The archived policy whose sha256 starts with `digest` (>= 16 hex digits), or None."""
    if len(digest) < 16 or not all(c in "0123456789abcdef" for c in digest):
        return None
    matches = sorted((home / POLICY_HISTORY).glob(f"{digest}*.toml"))
    if len(matches) != 1:
        return None
    try:
        policy = Policy.load(matches[0])
    except (OSError, ConfigError):
        return None
    return policy if policy.sha256.startswith(digest) else None
