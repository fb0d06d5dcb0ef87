"""Fake buyers and shipping addresses drawn from small fixed lists (obviously fictitious)."""

from __future__ import annotations

import random
from dataclasses import dataclass

FIRST_NAMES = (
    "Alex",
    "Sam",
    "Jordan",
    "Taylor",
    "Morgan",
    "Casey",
    "Robin",
    "Jamie",
    "Avery",
    "Riley",
    "Quinn",
    "Charlie",
    "Emery",
    "Harper",
    "Rowan",
    "Sasha",
    "Toni",
    "Kim",
    "Lee",
    "Noa",
)
LAST_NAMES = (
    "Sandbox",
    "Testwell",
    "Mockford",
    "Fakeley",
    "Samplesen",
    "Dummington",
    "Placeholder",
    "Exampleton",
    "Stubbs",
    "Fixture",
    "Notreal",
    "Pretendo",
    "Simmons-Fake",
    "Demoulin",
)
STREETS = (
    "Example Street",
    "Sample Road",
    "Test Lane",
    "Fixture Avenue",
    "Mock Way",
    "Stub Close",
    "Placeholder Drive",
    "Sandbox Boulevard",
)

# (city, state or region, postal code) per country; postal codes are plausible but fictitious.
CITIES: dict[str, tuple[tuple[str, str, str], ...]] = {
    "US": (
        ("Springfield", "IL", "62701"),
        ("Riverton", "WY", "82501"),
        ("Fairview", "TN", "37062"),
        ("Madison", "WI", "53703"),
        ("Georgetown", "TX", "78626"),
        ("Salem", "OR", "97301"),
    ),
    "GB": (
        ("Exampleton", "Kent", "ME1 1AA"),
        ("Sampleford", "Devon", "EX1 1ZZ"),
        ("Mockbury", "Yorkshire", "YO1 7HH"),
        ("Testwich", "Suffolk", "IP1 2AB"),
    ),
    "DE": (
        ("Musterstadt", "Bayern", "80331"),
        ("Beispielheim", "Hessen", "60311"),
        ("Testdorf", "Sachsen", "01067"),
        ("Probeburg", "Berlin", "10115"),
    ),
}
EMAIL_DOMAINS = ("example.com", "marketplace.example")


@dataclass(frozen=True, slots=True)
class Address:
    """A fictitious postal address."""

    name: str
    line1: str
    city: str
    state_or_region: str
    postal_code: str
    country_code: str
    phone: str


@dataclass(frozen=True, slots=True)
class Buyer:
    """A fictitious buyer with an address."""

    name: str
    email: str
    address: Address


def make_buyer(rng: random.Random, country_code: str) -> Buyer:
    """Draw a fake buyer living in ``country_code`` from ``rng``."""
    first = rng.choice(FIRST_NAMES)
    last = rng.choice(LAST_NAMES)
    number = rng.randint(1, 9999)
    domain = EMAIL_DOMAINS[rng.randrange(len(EMAIL_DOMAINS))]
    if domain == "marketplace.example":
        local = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(15))
    else:
        local = f"{first.lower()}.{last.lower()}{number}"
    city, region, postal = rng.choice(CITIES[country_code])
    address = Address(
        name=f"{first} {last}",
        line1=f"{rng.randint(1, 999)} {rng.choice(STREETS)}",
        city=city,
        state_or_region=region,
        postal_code=postal,
        country_code=country_code,
        phone=f"+0-555-{rng.randint(100, 999)}-{rng.randint(1000, 9999)}",
    )
    return Buyer(name=f"{first} {last}", email=f"{local}@{domain}", address=address)
