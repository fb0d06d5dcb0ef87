"""Password policy presets as data, the rules that check a new password, and the block list.

The company policy is the default; `nist-800-63b` follows NIST SP 800-63B rev 4 / OWASP ASVS
(no composition rules, no history, no periodic expiry). Both block common passwords and
context words (the user id and the service name). Passwords are NFKC-normalised before they
are checked or hashed, so the same passphrase typed on different keyboards matches.
"""

from __future__ import annotations

import datetime as dt
import functools
import importlib.resources
import itertools
import unicodedata
from dataclasses import dataclass

from .errors import PasswordRejected

_SERVICE_WORDS = ("amzigo",)
_LEET = str.maketrans("013457@$!|+", "oieastasilt")


@dataclass(frozen=True)
class PasswordPolicy:
    """A named password preset; the identity store records its name in the audit events."""

    name: str
    min_length: int
    max_length: int
    min_character_classes: int  # of lower/upper/digit/symbol; 0 means no composition rule
    history: int  # how many recent passwords (the current one included) cannot be reused
    max_age_days: int | None  # None: no periodic expiry
    warn_days: int  # warn this many days before expiry
    block_common: bool = True
    block_context: bool = True


COMPANY = PasswordPolicy(
    name="company",
    min_length=12,
    max_length=128,
    min_character_classes=3,
    history=10,
    max_age_days=365,
    warn_days=14,
)
NIST_800_63B = PasswordPolicy(
    name="nist-800-63b",
    min_length=12,
    max_length=128,
    min_character_classes=0,
    history=0,
    max_age_days=None,
    warn_days=0,
)
PRESETS: dict[str, PasswordPolicy] = {p.name: p for p in (COMPANY, NIST_800_63B)}
DEFAULT_POLICY = COMPANY


def preset(name: str) -> PasswordPolicy:
    """Return the preset called `name`; raise ValueError listing the known names otherwise."""
    try:
        return PRESETS[name]
    except KeyError:
        known = ", ".join(sorted(PRESETS))
        raise ValueError(f"unknown password preset {name!r}; use one of: {known}") from None


def expires_at(policy: PasswordPolicy, changed_at: dt.datetime) -> dt.datetime | None:
    """Return when a password set at `changed_at` expires under `policy` (None: never)."""
    if policy.max_age_days is None:
        return None
    return changed_at + dt.timedelta(days=policy.max_age_days)


def normalize(password: str) -> str:
    """Return the NFKC form of `password`, the form that is checked and hashed."""
    return unicodedata.normalize("NFKC", password)


@functools.cache
def common_passwords() -> frozenset[str]:
    """Return the shipped block list of common passwords (lowercase)."""
    text = (
        importlib.resources.files(__package__)
        .joinpath("common_passwords.txt")
        .read_text(encoding="utf-8")
    )
    return frozenset(
        line.strip().lower() for line in text.splitlines() if line.strip() and line[0] != "#"
    )


def character_classes(password: str) -> int:
    """Count the classes (lower, upper, digit, symbol) that occur in `password`."""
    lower = any(c.islower() for c in password)
    upper = any(c.isupper() for c in password)
    digit = any(c.isdigit() for c in password)
    symbol = any(not (c.islower() or c.isupper() or c.isdigit()) for c in password)
    return lower + upper + digit + symbol


def _is_trivial(password: str) -> bool:
    """Tell whether `password` has under 4 distinct characters or is a plain run like abcd."""
    if len(set(password)) < 4:
        return True
    steps = {ord(b) - ord(a) for a, b in itertools.pairwise(password)}
    return steps <= {1} or steps <= {-1}


def _variants(password: str) -> set[str]:
    """Return the forms of `password` compared with the block list (case, leet, suffixes)."""
    lower = password.lower()
    core = lower.strip("0123456789!@#$%^&*()_+-=.,?~ ")
    return {lower, core, lower.translate(_LEET), core.translate(_LEET)}


def check_password(
    password: str, policy: PasswordPolicy = DEFAULT_POLICY, context: tuple[str, ...] = ()
) -> None:
    """Raise PasswordRejected naming the first broken rule; never echoes the password."""
    pw = normalize(password)
    if len(pw) < policy.min_length:
        raise PasswordRejected(
            "min_length",
            f"use at least {policy.min_length} characters; a few unrelated words make a "
            "long password that is easy to remember",
        )
    if len(pw) > policy.max_length:
        raise PasswordRejected("max_length", f"use at most {policy.max_length} characters")
    if character_classes(pw) < policy.min_character_classes:
        raise PasswordRejected(
            "complexity",
            f"the {policy.name} policy needs at least {policy.min_character_classes} of: "
            "lowercase letters, uppercase letters, digits, symbols",
        )
    if _is_trivial(pw):
        raise PasswordRejected(
            "repetitive", "avoid repeated or sequential characters; use unrelated words"
        )
    if policy.block_common and _variants(pw) & common_passwords():
        raise PasswordRejected(
            "common_password",
            "this password (or a simple variation of it) is on the list of commonly used "
            "passwords; choose something less predictable",
        )
    if policy.block_context:
        lower = pw.lower()
        for word in (*context, *_SERVICE_WORDS):
            if len(word) >= 3 and word.lower() in lower:
                raise PasswordRejected(
                    "context_word",
                    "do not include your user name or the service name in the password",
                )
