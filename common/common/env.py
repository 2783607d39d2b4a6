"""Reading configuration from the environment (12-factor), with development defaults."""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url

TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off", ""})


class ConfigurationError(RuntimeError):
    """Raised at start-up when the environment cannot run the service safely."""


def env_str(name: str, default: str = "") -> str:
    """The variable as a string, or `default` when unset."""
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    """The variable as a boolean; anything but a clear yes/no word is an error."""
    raw = os.environ.get(name)
    if raw is None:
        return default
    word = raw.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ConfigurationError(f"{name} must be a boolean (true/false), got {raw!r}")


def env_int(name: str, default: int) -> int:
    """The variable as an integer."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ConfigurationError(f"{name} must be an integer, got {raw!r}") from exc


def env_float(name: str, default: float) -> float:
    """The variable as a float."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ConfigurationError(f"{name} must be a number, got {raw!r}") from exc


def env_list(name: str, default: list[str] | None = None) -> list[str]:
    """The variable as a comma-separated list, blanks dropped."""
    raw = os.environ.get(name)
    if raw is None:
        return list(default or [])
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_networks(name: str, default: list[str] | None = None) -> list[str]:
    """The variable as a comma-separated list of addresses or CIDR networks, each checked at start-up."""
    import ipaddress

    networks = env_list(name, default)
    for network in networks:
        try:
            ipaddress.ip_network(network, strict=False)
        except ValueError as exc:
            raise ConfigurationError(f"{name}: {network!r} is not an address or a CIDR network") from exc
    return networks


def is_development() -> bool:
    """True unless DJANGO_ENV says otherwise: development defaults are allowed only here."""
    return env_str("DJANGO_ENV", "development") == "development"


def env_secret(name: str, development_default: str) -> str:
    """A secret: the development default is refused outside development."""
    value = os.environ.get(name, "")
    if value:
        return value
    if is_development():
        return development_default
    raise ConfigurationError(f"{name} must be set when DJANGO_ENV is not 'development'")


def project_root(settings_file: str) -> Path:
    """The repository root, two folders above a service's settings.py."""
    return Path(settings_file).resolve().parents[2]


def var_dir(settings_file: str) -> Path:
    """The folder for local state (SQLite files, development keys, broker files)."""
    path = Path(env_str("LMS_VAR_DIR", str(project_root(settings_file) / "var")))
    path.mkdir(parents=True, exist_ok=True)
    return path


def database_from_env(*, sqlite_path: Path, conn_max_age: int = 60) -> dict:
    """DATABASE_URL when set (PostgreSQL in production and CI), else the embedded SQLite file.

    SQLite runs in IMMEDIATE transaction mode so that concurrent writers serialise
    instead of failing half-way, the closest it gets to PostgreSQL's row locks.
    """
    url = env_str("DATABASE_URL")
    if url:
        config = dj_database_url.parse(url, conn_max_age=conn_max_age, conn_health_checks=True)
        if config["ENGINE"] == "django.db.backends.sqlite3":
            config.setdefault("OPTIONS", {})["transaction_mode"] = "IMMEDIATE"
        return config
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(sqlite_path),
        "OPTIONS": {"transaction_mode": "IMMEDIATE", "timeout": 20},
    }
