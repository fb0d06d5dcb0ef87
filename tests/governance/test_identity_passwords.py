"""Password presets and rules (no database)."""

from __future__ import annotations

import dataclasses

import pytest

from amzigo_lab.governance.identity import (
    COMPANY,
    DEFAULT_POLICY,
    NIST_800_63B,
    PRESETS,
    PasswordRejected,
    preset,
)
from amzigo_lab.governance.identity.passwords import check_password, common_passwords

GOOD = "Velvet-Harbor-Lamp-42"


def test_presets_are_data() -> None:
    assert DEFAULT_POLICY is COMPANY
    assert set(PRESETS) == {"company", "nist-800-63b"}
    assert preset("nist-800-63b") is NIST_800_63B
    assert (COMPANY.min_length, COMPANY.min_character_classes, COMPANY.history) == (12, 3, 10)
    assert (COMPANY.max_age_days, COMPANY.warn_days) == (365, 14)
    assert NIST_800_63B.min_length == 12 and NIST_800_63B.max_length >= 64
    assert NIST_800_63B.min_character_classes == 0
    assert NIST_800_63B.history == 0 and NIST_800_63B.max_age_days is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        COMPANY.min_length = 8  # type: ignore[misc]
    with pytest.raises(ValueError, match="company"):
        preset("lax")


def test_block_list_ships_about_200_entries() -> None:
    words = common_passwords()
    assert 150 <= len(words) <= 400
    assert {"123456", "password", "qwerty", "iloveyou"} <= words


@pytest.mark.parametrize("policy", [COMPANY, NIST_800_63B], ids=lambda p: p.name)
@pytest.mark.parametrize(
    ("password", "rule"),
    [
        ("Short-1a", "min_length"),
        ("x" * 129, "max_length"),
        ("Aa1Aa1Aa1Aa1Aa1", "repetitive"),
        ("P@ssw0rd2024!!", "common_password"),
        ("Password123456", "common_password"),
        ("Qwertyuiop12345", "common_password"),
        ("Alice.Smith-Rocks-9", "context_word"),
        ("My-Amzigo-Login-77", "context_word"),
    ],
)
def test_rules_common_to_both_presets(policy: object, password: str, rule: str) -> None:
    with pytest.raises(PasswordRejected) as err:
        check_password(password, policy, context=("alice.smith", "smith"))  # type: ignore[arg-type]
    assert err.value.rule == rule
    assert password not in str(err.value)
    assert rule in str(err.value)


def test_sequential_and_single_character_passwords_rejected() -> None:
    for password in ("aaaaaaaaaaaaaaaa", "abcdefghijklmnop", "zyxwvutsrqpon"):
        with pytest.raises(PasswordRejected) as err:
            check_password(password, NIST_800_63B)
        assert err.value.rule == "repetitive"


def test_company_needs_three_character_classes_nist_does_not() -> None:
    passphrase = "velvet harbor lamp orchid"
    with pytest.raises(PasswordRejected) as err:
        check_password(passphrase, COMPANY)
    assert err.value.rule == "complexity"
    assert "at least 3 of" in str(err.value)
    check_password(passphrase, NIST_800_63B)
    check_password("Velvet harbor lamp9", COMPANY)


def test_good_passwords_pass_and_long_ones_allowed() -> None:
    for policy in (COMPANY, NIST_800_63B):
        check_password(GOOD, policy, context=("bob",))
        check_password("Aa1-" + "velvet harbor " * 4, policy)  # 60 chars, pasted passphrase
