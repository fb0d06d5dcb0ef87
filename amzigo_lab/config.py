"""Typed settings and the home folder.

Settings come from three places, later ones winning: the defaults below, `<home>/config.toml`,
and environment variables named `AMZIGO_<SETTING>` (upper case). The home itself is
`AMZIGO_HOME`, by default a folder in the user's data directory (`platformdirs`, e.g.
`~/.local/share/amzigo/home`), never the current directory, so a command gives the same answer
wherever it runs. Relative paths in settings are relative to the home. An invalid value fails at
start-up with a `ConfigError` that names the setting and says how to fix it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import platformdirs

from amzigo_lab.errors import ConfigError

#: The user's amzigo data folder (holds the default home and the lab's notebook folder).
USER_DATA = platformdirs.user_data_path("amzigo", appauthor=False)
DEFAULT_HOME = USER_DATA / "home"
#: The default notebook folder of `amzigo lab` (outside the home).
DEFAULT_LAB_ROOT = USER_DATA / "notebooks"
PII_PURPOSES = ("order_fulfilment", "tax", "legal")
MIB = 1024 * 1024
#: The largest automatic hot cache budget (an explicit `hot_cache_mb` may be larger).
HOT_CACHE_AUTO_CAP = 2048 * MIB


def physical_memory() -> int:
    """Bytes of RAM of this machine (0 if the system does not say)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (OSError, ValueError):
        return 0


@dataclasses.dataclass(frozen=True)
class Settings:
    """Every setting of a home. Field docs say what each one controls."""

    home: Path
    #: Where the master key comes from: "file" (a 0600 file), "env" (base64 in a variable) or
    #: "kms" (stored only encrypted by a KMS key; see docs/operations.md, lake/kms.py).
    key_provider: str = "file"
    #: The master key file when key_provider = "file". Default: <home>/keys/master.key.
    key_file: Path | None = None
    #: The variable holding the base64 master key when key_provider = "env".
    key_env_var: str = "AMZIGO_MASTER_KEY"
    #: With key_provider = "kms": the KMS key that encrypts the master key (its id at the KMS).
    kms_key_id: str = ""
    #: With key_provider = "kms": which KMS. "local:<dir>" is the local test double (LocalKms).
    kms_endpoint: str = ""
    #: Audit segments. Default: <home>/audit.
    audit_dir: Path | None = None
    #: Signed audit checkpoints, ideally on other storage. Default: <home>/audit-checkpoints.
    audit_checkpoint_dir: Path | None = None
    #: The audit anchor: a directory on other storage (append-only) that receives a copy of
    #: every signed checkpoint, so `audit verify` detects a wiped or rolled-back log. Unset:
    #: no anchor (verify warns). `[audit] anchor = "/path"` or AMZIGO_AUDIT_ANCHOR.
    audit_anchor: Path | None = None
    #: Write an audit checkpoint at least every this many events (0: off).
    audit_checkpoint_every_events: int = 100
    #: Write an audit checkpoint at the next event once this many seconds passed (0: off).
    audit_checkpoint_every_seconds: int = 300
    #: Seed of the local SP-API sandbox's synthetic world.
    sandbox_seed: int = 7
    #: The sandbox's "today" (YYYY-MM-DD); empty means the current UTC date.
    sandbox_today: dt.date | None = None
    #: Purposes for which buyer PII is ingested (empty: no PII is fetched or stored).
    pii_purposes: tuple[str, ...] = ()
    #: Rows per Parquet row group written to the lake.
    row_group_rows: int = 131_072
    #: Where generated reports go; relative paths are inside the home. Default: <home>/reports.
    reports_dir: Path = Path("reports")
    #: The gateway's hot cache of decrypted lake files (issue 17), in MiB: 0 (the default) is
    #: off; None ("auto") is an eighth of the machine's RAM, at most 2 GiB. Off by default
    #: because a first query decrypts every column of its files (4-18x slower) and a query over
    #: a few days of a long history reads whole cached tables (1.2-1.5x); it pays for analysts
    #: repeating whole-dataset queries. See docs/operations.md.
    hot_cache_mb: int | None = 0

    @property
    def hot_cache_bytes(self) -> int:
        """The hot cache's byte budget (0: off)."""
        if self.hot_cache_mb is not None:
            return self.hot_cache_mb * MIB
        return min(physical_memory() // 8, HOT_CACHE_AUTO_CAP)

    @property
    def catalog_path(self) -> Path:
        """The SQLite catalog."""
        return self.home / "catalog.sqlite"

    @property
    def lake_dir(self) -> Path:
        """Root of the encrypted Parquet lake."""
        return self.home / "lake"

    @property
    def state_dir(self) -> Path:
        """Locks, sandbox certificates, scratch space."""
        return self.home / "state"

    @property
    def master_key_file(self) -> Path:
        """The resolved master key file path."""
        return self.key_file or self.home / "keys" / "master.key"

    @property
    def master_key_kms_file(self) -> Path:
        """With key_provider = "kms": the master key encrypted by the KMS key (not secret)."""
        return self.home / "keys" / "master.kms"

    @property
    def audit_path(self) -> Path:
        """The resolved audit directory."""
        return self.audit_dir or self.home / "audit"

    @property
    def checkpoint_path(self) -> Path:
        """The resolved audit checkpoint directory."""
        return self.audit_checkpoint_dir or self.home / "audit-checkpoints"


def _path(v: Any) -> Path:
    if not isinstance(v, str | Path) or str(v) == "":
        raise ValueError("expected a path")
    return Path(v).expanduser()


def _opt_path(v: Any) -> Path | None:
    return None if v in (None, "") else _path(v)


def _int(v: Any) -> int:
    if isinstance(v, bool):
        raise ValueError("expected an integer")
    return int(v)


def _non_negative_int(v: Any) -> int:
    n = _int(v)
    if n < 0:
        raise ValueError("expected an integer >= 0")
    return n


def _positive_int(v: Any) -> int:
    n = _int(v)
    if n <= 0:
        raise ValueError("expected a positive integer")
    return n


def _auto_or_mib(v: Any) -> int | None:
    if v is None or (isinstance(v, str) and v.strip().lower() in ("", "auto")):
        return None
    try:
        return _non_negative_int(v)
    except ValueError:
        raise ValueError('expected "auto" or a number of MiB >= 0 (0 turns it off)') from None


def _opt_date(v: Any) -> dt.date | None:
    if v in (None, ""):
        return None
    if isinstance(v, dt.date):
        return v
    return dt.date.fromisoformat(str(v))


def _choice(*allowed: str) -> Callable[[Any], str]:
    def parse(v: Any) -> str:
        if v not in allowed:
            raise ValueError(f"expected one of {', '.join(allowed)}")
        return str(v)

    return parse


def _purposes(v: Any) -> tuple[str, ...]:
    items = [p.strip() for p in v.split(",")] if isinstance(v, str) else list(v)
    items = [p for p in items if p]
    bad = [p for p in items if p not in PII_PURPOSES]
    if bad:
        raise ValueError(f"{bad[0]!r} is not a PII purpose; allowed: {', '.join(PII_PURPOSES)}")
    return tuple(items)


def _env_var_name(v: Any) -> str:
    s = str(v)
    if not s.replace("_", "").isalnum():
        raise ValueError("expected an environment variable name")
    return s


_PARSERS: dict[str, Callable[[Any], Any]] = {
    "key_provider": _choice("file", "env", "kms"),
    "kms_key_id": str,
    "kms_endpoint": str,
    "key_file": _opt_path,
    "key_env_var": _env_var_name,
    "audit_dir": _opt_path,
    "audit_checkpoint_dir": _opt_path,
    "audit_anchor": _opt_path,
    "audit_checkpoint_every_events": _non_negative_int,
    "audit_checkpoint_every_seconds": _non_negative_int,
    "sandbox_seed": _int,
    "sandbox_today": _opt_date,
    "pii_purposes": _purposes,
    "row_group_rows": _positive_int,
    "reports_dir": _path,
    "hot_cache_mb": _auto_or_mib,
}


def resolve_home(home: str | Path | None = None, env: Mapping[str, str] | None = None) -> Path:
    """The home folder: the argument, else AMZIGO_HOME, else DEFAULT_HOME (absolute)."""
    env = os.environ if env is None else env
    raw = home if home is not None else env.get("AMZIGO_HOME") or DEFAULT_HOME
    return Path(raw).expanduser().resolve()


def load_settings(
    home: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    **overrides: Any,
) -> Settings:
    """Load and validate the settings of a home (config file, then environment, then overrides)."""
    return explain_settings(home, env, **overrides)[0]


def explain_settings(
    home: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    **overrides: Any,
) -> tuple[Settings, dict[str, str]]:
    """The settings and, per setting, where its value came from (`amzigo config show`)."""
    env = os.environ if env is None else env
    root = resolve_home(home, env)
    values: dict[str, tuple[Any, str]] = {}
    cfg = root / "config.toml"
    data = read_config(cfg)
    if data:
        for key, value in data.items():
            if key == "audit" and isinstance(value, dict):  # [audit] anchor = ... -> audit_anchor
                for sub, v in value.items():
                    values[f"audit_{sub}"] = (v, f"{cfg} [audit] key '{sub}'")
                continue
            if isinstance(value, dict):
                continue  # sections (e.g. [schedule]) are read by the features that own them
            values[key] = (value, f"{cfg} key '{key}'")
    for key in _PARSERS:
        name = f"AMZIGO_{key.upper()}"
        if name in env:
            values[key] = (env[name], f"environment variable {name}")
    for key, value in overrides.items():
        values[key] = (value, f"argument {key}")
    parsed: dict[str, Any] = {}
    for key, (value, origin) in values.items():
        if key not in _PARSERS:
            known = ", ".join(sorted(_PARSERS))
            raise ConfigError(f"unknown setting {origin}: known settings are {known}")
        try:
            parsed[key] = _PARSERS[key](value)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"invalid {origin} = {value!r}: {exc}") from None
    reports = parsed.get("reports_dir", Settings.reports_dir)
    parsed["reports_dir"] = root / reports.expanduser()  # absolute paths stay as they are
    origins = {key: origin for key, (_v, origin) in values.items()}
    if home is not None:
        origins["home"] = "argument --home"
    elif env.get("AMZIGO_HOME"):
        origins["home"] = "environment variable AMZIGO_HOME"
    else:
        origins["home"] = "default (the user's data directory)"
    return Settings(home=root, **parsed), origins


def config_sections(settings: Settings) -> dict[str, Any]:
    """The table sections of `<home>/config.toml` (e.g. `[schedule]`), for their features."""
    data = read_config(settings.home / "config.toml")
    return {k: v for k, v in data.items() if isinstance(v, dict)}


def read_config(cfg: Path) -> dict[str, Any]:
    """The parsed config file ({} if there is none); a `ConfigError` naming the cause and the
    fix if it is a directory, a dangling link, unreadable, not UTF-8 or not TOML."""
    if not cfg.exists() and not cfg.is_symlink():
        return {}
    if cfg.is_symlink() and not cfg.exists():
        raise ConfigError(
            f"{cfg} is a symlink to {os.readlink(cfg)}, which does not exist: fix the link or "
            "remove it"
        )
    if not cfg.is_file():
        raise ConfigError(
            f"{cfg} is a directory, not a file: remove it (`rmdir {cfg}`) or replace it with a "
            "TOML file"
        )
    try:
        text = cfg.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{cfg} is not UTF-8 text (byte {exc.start}): save it as UTF-8 or remove it"
        ) from None
    except OSError as exc:
        if isinstance(exc, PermissionError):
            raise
        raise ConfigError(f"cannot read {cfg}: {exc.strerror}; fix or remove the file") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{cfg}: not valid TOML ({exc}); fix or remove the file") from None
