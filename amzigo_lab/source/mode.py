"""A home's source mode: `sandbox` (synthetic data, `amzigo init --sandbox`) or `amazon`.

The sandbox is never used implicitly. A home records its mode in the catalog:

- `amzigo init --sandbox` (the demo does this) makes a sandbox home: `amzigo ingest` starts the
  embedded sandbox; Amazon credentials are refused (use another home for real data, so a
  seller's lake never holds synthetic orders);
- `amzigo credentials set` (or ingesting with credentials from the environment) makes it an
  Amazon home, for good: it never falls back to the sandbox, even once credentials are removed;
- a home with neither (plain `amzigo init`, or a typo in `--home`) ingests nothing and says what
  to do.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from amzigo_lab.errors import ConfigError
from amzigo_lab.lake.catalog import iso

if TYPE_CHECKING:
    from amzigo_lab.lake.store import Lake

MODE_META = "source_mode"
AMAZON_META = "amazon_connected_at"
SANDBOX = "sandbox"
AMAZON = "amazon"
UNSET = "unset"

NO_SOURCE = (
    "this home has no data source: run `amzigo init --sandbox{home}` for the synthetic "
    "sandbox, or `amzigo credentials set{home}` to connect it to Amazon (docs/operations.md)"
)


def mode(lake: Lake) -> str:
    """`amazon` (ever connected), `sandbox`, or `unset`."""
    if lake.catalog.get_meta(AMAZON_META) is not None:
        return AMAZON
    return lake.catalog.get_meta(MODE_META) or UNSET


def describe(lake: Lake) -> str:
    """The mode for summaries (`lake ls`, `ingest`, `doctor`)."""
    m = mode(lake)
    if m == AMAZON:
        return f"amazon (connected since {lake.catalog.get_meta(AMAZON_META)})"
    if m == SANDBOX:
        return "sandbox (synthetic data; never mixed with Amazon data)"
    return "unset (no data source: `amzigo init --sandbox` or `amzigo credentials set`)"


def set_sandbox(lake: Lake) -> None:
    """Make this a sandbox home; refused on a home ever connected to Amazon."""
    if mode(lake) == AMAZON:
        raise ConfigError(
            f"{lake.settings.home} is connected to Amazon (since "
            f"{lake.catalog.get_meta(AMAZON_META)}): it never uses the sandbox; create another "
            "home for it: `amzigo init --sandbox --home ./sandbox-home`"
        )
    if mode(lake) != SANDBOX:
        with lake.catalog.transaction():
            lake.catalog.set_meta(MODE_META, SANDBOX)


def require_not_sandbox(lake: Lake) -> None:
    """Refuse Amazon credentials on a sandbox home (its lake holds synthetic data)."""
    if mode(lake) == SANDBOX:
        raise ConfigError(
            f"{lake.settings.home} is a sandbox home (synthetic data): connect Amazon to a new "
            "home instead: `amzigo init --home ./amazon-home` then `amzigo credentials set "
            "--home ./amazon-home`"
        )


def mark_amazon(lake: Lake) -> None:
    """Record that this home is connected to Amazon (once; it never falls back)."""
    require_not_sandbox(lake)
    if lake.catalog.get_meta(AMAZON_META) is None:
        with lake.catalog.transaction():
            lake.catalog.set_meta(AMAZON_META, iso(lake.clock()))
            lake.catalog.set_meta(MODE_META, AMAZON)
