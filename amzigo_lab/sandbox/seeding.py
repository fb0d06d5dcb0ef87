"""Deterministic randomness: every random stream is derived from a seed and a path of names."""

from __future__ import annotations

import hashlib
import random


def stable_int(*parts: object) -> int:
    """Return a 64-bit integer derived from ``parts`` (stable across processes and runs)."""
    text = "\x1f".join(str(part) for part in parts)
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big")


def rng_for(*parts: object) -> random.Random:
    """Return a ``random.Random`` seeded from ``parts`` (never Python's salted ``hash()``)."""
    return random.Random(stable_int(*parts))


_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def stable_code(length: int, *parts: object) -> str:
    """Return an upper-case alphanumeric code of ``length`` characters derived from ``parts``."""
    value = stable_int(*parts)
    chars: list[str] = []
    counter = 0
    while len(chars) < length:
        if value == 0:
            counter += 1
            value = stable_int(*parts, counter)
        value, digit = divmod(value, len(_ALPHABET))
        chars.append(_ALPHABET[digit])
    return "".join(chars)
