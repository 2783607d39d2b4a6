"""Settings from the environment: parsing, secrets, the database URL, local state, the broker."""

import pytest

from common import env
from common.celery_config import broker_settings


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("1", True), ("true", True), (" Yes ", True), ("ON", True), ("0", False), ("false", False), ("no", False)],
)
def test_booleans_are_read_from_plain_words(monkeypatch, raw, expected):
    monkeypatch.setenv("FLAG", raw)

    assert env.env_bool("FLAG") is expected


def test_an_unset_variable_gives_the_default(monkeypatch):
    monkeypatch.delenv("UNSET_ONE", raising=False)

    assert env.env_bool("UNSET_ONE", True) is True
    assert env.env_int("UNSET_ONE", 7) == 7
    assert env.env_float("UNSET_ONE", 0.5) == 0.5
    assert env.env_str("UNSET_ONE", "x") == "x"
    assert env.env_list("UNSET_ONE", ["a"]) == ["a"]


def test_numbers_and_lists_are_parsed(monkeypatch):
    monkeypatch.setenv("COUNT", "42")
    monkeypatch.setenv("RATIO", "2.5")
    monkeypatch.setenv("HOSTS", "a.example, b.example,,c.example ")
    monkeypatch.setenv("BLANK", "")

    assert env.env_int("COUNT", 1) == 42
    assert env.env_float("RATIO", 1.0) == 2.5
    assert env.env_list("HOSTS") == ["a.example", "b.example", "c.example"]
    assert env.env_int("BLANK", 3) == 3


@pytest.mark.parametrize(
    ("reader", "raw"),
    [(env.env_bool, "maybe"), (env.env_int, "4.5"), (env.env_int, "many"), (env.env_float, "fast")],
    ids=["bool", "int-float", "int-word", "float-word"],
)
def test_a_value_that_does_not_parse_stops_the_start_naming_the_variable(monkeypatch, reader, raw):
    monkeypatch.setenv("SETTING_X", raw)

    with pytest.raises(env.ConfigurationError, match="SETTING_X"):
        reader("SETTING_X", *([] if reader is env.env_bool else [1]))


def test_trusted_proxies_are_addresses_or_networks_and_none_by_default(monkeypatch):
    monkeypatch.setenv("PROXIES", "10.0.0.0/8, 192.0.2.1,::1")
    monkeypatch.delenv("NO_PROXIES", raising=False)

    assert env.env_networks("PROXIES") == ["10.0.0.0/8", "192.0.2.1", "::1"]
    assert env.env_networks("NO_PROXIES", []) == []

    monkeypatch.setenv("PROXIES", "10.0.0.0/8,gateway")
    with pytest.raises(env.ConfigurationError, match="PROXIES: 'gateway'"):
        env.env_networks("PROXIES")


def test_secrets_have_defaults_only_in_development(monkeypatch):
    monkeypatch.delenv("SECRET", raising=False)
    monkeypatch.delenv("DJANGO_ENV", raising=False)
    assert env.env_secret("SECRET", "dev") == "dev"

    monkeypatch.setenv("DJANGO_ENV", "production")
    with pytest.raises(env.ConfigurationError, match="SECRET"):
        env.env_secret("SECRET", "dev")
    monkeypatch.setenv("SECRET", "real")
    assert env.env_secret("SECRET", "dev") == "real"


def test_the_database_comes_from_its_url(monkeypatch, tmp_path):
    monkeypatch.setenv("DATABASE_URL", "postgresql://app:pw@db.example:6543/loans")

    config = env.database_from_env(sqlite_path=tmp_path / "x.sqlite3", conn_max_age=30)

    assert config["ENGINE"] == "django.db.backends.postgresql"
    assert (config["NAME"], config["USER"], config["PASSWORD"]) == ("loans", "app", "pw")
    assert (config["HOST"], config["PORT"]) == ("db.example", 6543)
    assert (config["CONN_MAX_AGE"], config["CONN_HEALTH_CHECKS"]) == (30, True)


def test_without_a_url_the_database_is_a_sqlite_file_in_immediate_mode(monkeypatch, tmp_path):
    monkeypatch.delenv("DATABASE_URL", raising=False)

    config = env.database_from_env(sqlite_path=tmp_path / "x.sqlite3")

    assert (config["ENGINE"], config["NAME"]) == ("django.db.backends.sqlite3", str(tmp_path / "x.sqlite3"))
    assert config["OPTIONS"]["transaction_mode"] == "IMMEDIATE"


def test_a_sqlite_url_also_runs_in_immediate_mode(monkeypatch, tmp_path):
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/y.sqlite3")

    config = env.database_from_env(sqlite_path=tmp_path / "x.sqlite3")

    assert config["NAME"] == f"{tmp_path}/y.sqlite3"
    assert config["OPTIONS"]["transaction_mode"] == "IMMEDIATE"


def test_local_state_lives_under_lms_var_dir_when_set(monkeypatch, tmp_path):
    monkeypatch.setenv("LMS_VAR_DIR", str(tmp_path / "state"))

    folder = env.var_dir("/repo/svc/svc/settings.py")

    assert folder == tmp_path / "state"
    assert folder.is_dir()


def test_local_state_defaults_to_var_at_the_repository_root(monkeypatch, tmp_path):
    monkeypatch.delenv("LMS_VAR_DIR", raising=False)
    settings_file = tmp_path / "repo" / "svc" / "svc" / "settings.py"

    assert env.var_dir(str(settings_file)) == tmp_path / "repo" / "var"


def test_a_redis_broker_gets_a_visibility_timeout(monkeypatch, tmp_path):
    monkeypatch.setenv("CELERY_BROKER_URL", "redis://broker.example:6379/0")
    monkeypatch.setenv("CELERY_VISIBILITY_TIMEOUT", "7200")

    config = broker_settings(tmp_path)

    assert config == {
        "CELERY_BROKER_URL": "redis://broker.example:6379/0",
        "CELERY_BROKER_TRANSPORT_OPTIONS": {"visibility_timeout": 7200},
    }


def test_without_a_broker_url_the_serverless_broker_keeps_its_files_under_var(monkeypatch, tmp_path):
    monkeypatch.delenv("CELERY_BROKER_URL", raising=False)

    config = broker_settings(tmp_path)

    options = config["CELERY_BROKER_TRANSPORT_OPTIONS"]
    assert config["CELERY_BROKER_URL"] == "filesystem://"
    assert options["data_folder_in"] == options["data_folder_out"] == str(tmp_path / "broker" / "queue")
    assert options["control_folder"] == str(tmp_path / "broker" / "control")
    assert (tmp_path / "broker" / "queue").is_dir()
