"""Tests of `pinsched.config`: layering, validation messages, webhooks and redaction."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from pinsched.config import Config, ConfigError, WebhookEndpoint, add_serve_arguments, load_config

# Webhook secrets the sender accepts (whsec_ + base64 of at least 16 bytes), as serve requires.
WH_NEW = "whsec_bmV3LXNpZ25pbmcta2V5LTAxMjM="
WH_OLD = "whsec_b2xkLXNpZ25pbmcta2V5LTAxMjM="
WH_ABC = "whsec_YWJjLXNpZ25pbmcta2V5LTAxMjM="
WH_B1 = "whsec_YjEtc2lnbmluZy1rZXktMDEyMw=="
WH_B2 = "whsec_YjItc2lnbmluZy1rZXktMDEyMw=="
WH_A = "whsec_YS1zaWduaW5nLWtleS0wMTIz"
WH_S = "whsec_cy1zaWduaW5nLWtleS0wMTIz"
WH_E = "whsec_ZW52LXNpZ25pbmcta2V5LTAxMjM="


def _flags(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_serve_arguments(parser)
    return parser.parse_args(argv)


def _toml(tmp_path: Path, text: str) -> str:
    path = tmp_path / "pinsched.toml"
    path.write_text(text)
    return str(path)


def test_defaults_without_any_source() -> None:
    """With no file, no environment and no flags, load_config returns the documented defaults."""
    assert load_config(None, {}, None) == Config()
    assert Config().listen == "127.0.0.1:50051"
    assert Config().db_path == "./pinsched.db"


def test_unset_flags_are_none() -> None:
    """Serve flags default to None so that a flag not given does not override lower layers."""
    args = _flags()
    assert args.listen is None
    assert args.db_path is None
    assert args.allow_insecure_listen is None


def test_precedence_file_then_env_then_flags(tmp_path: Path) -> None:
    """The TOML file overrides defaults, the environment overrides the file, flags override both."""
    path = _toml(
        tmp_path,
        'listen = "127.0.0.1:1111"\ndb_path = "/file.db"\nlog_level = "debug"\nhorizon_days = 30\n',
    )
    env = {"PINSCHED_LISTEN": "127.0.0.1:2222", "PINSCHED_DB": "/env.db"}
    cfg = load_config(_flags("--listen", "127.0.0.1:3333"), env, path)
    assert cfg.listen == "127.0.0.1:3333"  # flag
    assert cfg.db_path == "/env.db"  # environment
    assert cfg.log_level == "debug"  # file
    assert cfg.horizon_days == 30  # file
    assert cfg.max_attempts == 0  # default: no count cap, the retry budget is time
    assert cfg.pinterest_read_lag_s == 5.0  # default


def test_environment_values_are_typed() -> None:
    """Numbers and booleans from the environment are parsed to their field types."""
    env = {
        "PINSCHED_MAX_ATTEMPTS": "3",
        "PINSCHED_RETRY_BASE_DELAY_S": "0.5",
        "PINSCHED_PINTEREST_READ_LAG_S": "0",
        "PINSCHED_ALLOW_INSECURE_LISTEN": "yes",
        "PINSCHED_LOG_FORMAT": "Console",
        "PINSCHED_METRICS_LISTEN": "127.0.0.1:9100",
    }
    cfg = load_config(None, env, None)
    assert cfg.max_attempts == 3
    assert cfg.retry_base_delay_s == 0.5
    assert cfg.pinterest_read_lag_s == 0.0
    assert cfg.allow_insecure_listen is True
    assert cfg.log_format == "console"
    assert cfg.metrics_listen == "127.0.0.1:9100"


def test_empty_environment_variable_counts_as_unset() -> None:
    """An empty PINSCHED_* variable leaves the lower layer's value in place."""
    assert load_config(None, {"PINSCHED_LISTEN": "", "PINSCHED_API_TOKEN": ""}, None) == Config()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PINSCHED_LISTEN": "abc"}, "PINSCHED_LISTEN: expected host:port, got 'abc'"),
        ({"PINSCHED_LISTEN": "127.0.0.1:99999"}, "PINSCHED_LISTEN: expected host:port"),
        ({"PINSCHED_METRICS_LISTEN": ":9100"}, "PINSCHED_METRICS_LISTEN: expected host:port"),
        ({"PINSCHED_LOG_FORMAT": "xml"}, "PINSCHED_LOG_FORMAT: expected one of console, json"),
        ({"PINSCHED_LOG_LEVEL": "loud"}, "PINSCHED_LOG_LEVEL: expected one of"),
        ({"PINSCHED_MAX_ATTEMPTS": "-1"}, "PINSCHED_MAX_ATTEMPTS: expected an integer >= 0"),
        ({"PINSCHED_PINTEREST_READ_LAG_S": "-1"}, "PINSCHED_PINTEREST_READ_LAG_S: expected a"),
        ({"PINSCHED_MAX_ATTEMPTS": "2.5"}, "PINSCHED_MAX_ATTEMPTS: expected an integer"),
        ({"PINSCHED_HORIZON_DAYS": "-1"}, "PINSCHED_HORIZON_DAYS: expected an integer >= 1"),
        ({"PINSCHED_REQUEST_TIMEOUT_S": "0"}, "PINSCHED_REQUEST_TIMEOUT_S: expected a number > 0"),
        ({"PINSCHED_SHUTDOWN_GRACE_S": "nan"}, "PINSCHED_SHUTDOWN_GRACE_S: expected a finite"),
        ({"PINSCHED_APP_WRITES_PER_MINUTE": "-5"}, "PINSCHED_APP_WRITES_PER_MINUTE: expected"),
        ({"PINSCHED_ALLOW_INSECURE_LISTEN": "maybe"}, "PINSCHED_ALLOW_INSECURE_LISTEN: expected"),
        ({"PINSCHED_PINTEREST_API_BASE": "api.pinterest.com"}, "PINSCHED_PINTEREST_API_BASE"),
        ({"PINSCHED_CLOCK_SKEW_TOLERANCE_S": "soon"}, "PINSCHED_CLOCK_SKEW_TOLERANCE_S"),
        ({"PINSCHED_VERIFY_TIMEOUT_S": "0"}, "PINSCHED_VERIFY_TIMEOUT_S: expected a number > 0"),
        ({"PINSCHED_TOKEN_KEEPER": "sometimes"}, "PINSCHED_TOKEN_KEEPER: expected true or false"),
        ({"PINSCHED_TOKEN_REFRESHES_PER_SECOND": "-1"}, "PINSCHED_TOKEN_REFRESHES_PER_SECOND"),
        ({"PINSCHED_TOKEN_RETRY_S": "x"}, "PINSCHED_TOKEN_RETRY_S: expected"),
        ({"PINSCHED_CLUSTER_LEASE_S": "0.5"}, "PINSCHED_CLUSTER_LEASE_S: expected a number >= 1"),
        ({"PINSCHED_CLUSTER_LEASE_S": "soon"}, "PINSCHED_CLUSTER_LEASE_S: expected a number"),
        ({"PINSCHED_CLUSTER": "several"}, "PINSCHED_CLUSTER: expected true or false"),
        ({"PINSCHED_CLUSTER": "true"}, "PINSCHED_CLUSTER: several daemons share only a PostgreSQL"),
    ],
)
def test_bad_environment_value_names_the_variable(env: dict[str, str], message: str) -> None:
    """Every malformed environment value raises ConfigError naming the variable."""
    with pytest.raises(ConfigError, match=r"^" + message.replace(".", r"\.")):
        load_config(None, env, None)


def test_cluster_is_off_by_default_and_needs_a_postgresql_database(tmp_path: Path) -> None:
    """A daemon runs alone unless asked; `cluster` is accepted from the flag, the environment
    or TOML with a postgresql:// db_path, and refused with a SQLite file, naming both sources."""
    url = "postgresql://pinsched@db:5432/pinsched"
    assert load_config(None, {"PINSCHED_DB": url}, None).cluster is False
    assert load_config(_flags("--cluster", "--db", url), {}, None).cluster is True
    assert load_config(None, {"PINSCHED_CLUSTER": "1", "PINSCHED_DB": url}, None).cluster
    assert load_config(None, {}, _toml(tmp_path, f'cluster = true\ndb_path = "{url}"')).cluster
    with pytest.raises(ConfigError, match=r"^--cluster: several daemons .* \(--db\)"):
        load_config(_flags("--cluster", "--db", "./here.db"), {}, None)


def test_bad_flag_value_names_the_flag() -> None:
    """A malformed flag value raises ConfigError naming the flag."""
    with pytest.raises(
        ConfigError, match=r"^--log-format: expected one of console, json, got 'yaml'"
    ):
        load_config(_flags("--log-format", "yaml"), {}, None)


def test_bad_file_value_names_the_file_and_key(tmp_path: Path) -> None:
    """A value of the wrong type in the TOML file names the file and the key."""
    path = _toml(tmp_path, 'max_attempts = "many"\n')
    with pytest.raises(ConfigError, match=r"pinsched\.toml: max_attempts: expected an integer"):
        load_config(None, {}, path)


def test_toml_booleans_and_numbers_do_not_mix(tmp_path: Path) -> None:
    """A TOML boolean is refused where a number is expected, and a number where a boolean is."""
    with pytest.raises(ConfigError, match="horizon_days: expected an integer"):
        load_config(None, {}, _toml(tmp_path, "horizon_days = true\n"))
    with pytest.raises(ConfigError, match="allow_insecure_listen: expected true or false"):
        load_config(None, {}, _toml(tmp_path, "allow_insecure_listen = 1\n"))


def test_unknown_toml_key_is_refused(tmp_path: Path) -> None:
    """A key that is not a Config field is refused, naming the file and the key."""
    path = _toml(tmp_path, 'listen_address = "127.0.0.1:1"\n')
    with pytest.raises(ConfigError, match=r"pinsched\.toml: listen_address: unknown key"):
        load_config(None, {}, path)


def test_missing_and_malformed_files_are_config_errors(tmp_path: Path) -> None:
    """A config file that cannot be read or parsed raises ConfigError naming the file."""
    with pytest.raises(ConfigError, match="cannot read the config file"):
        load_config(None, {}, str(tmp_path / "absent.toml"))
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_config(None, {}, _toml(tmp_path, "listen = \n"))


def test_tls_cert_and_key_go_together(tmp_path: Path) -> None:
    """A TLS certificate without its key (or the reverse) is refused, naming both keys."""
    cert = tmp_path / "cert.pem"
    cert.write_text("x")
    with pytest.raises(ConfigError, match=r"^--tls-cert: tls_cert_file needs tls_key_file"):
        load_config(_flags("--tls-cert", str(cert)), {}, None)
    with pytest.raises(ConfigError, match=r"^PINSCHED_TLS_KEY_FILE: tls_key_file needs"):
        load_config(None, {"PINSCHED_TLS_KEY_FILE": str(cert)}, None)


def test_tls_files_must_exist(tmp_path: Path) -> None:
    """TLS file paths that do not exist are refused at load time."""
    key = tmp_path / "key.pem"
    key.write_text("x")
    flags = _flags("--tls-cert", str(tmp_path / "nope.pem"), "--tls-key", str(key))
    with pytest.raises(ConfigError, match=r"^--tls-cert: no such file"):
        load_config(flags, {}, None)


def test_non_loopback_listen_needs_protection() -> None:
    """Listening beyond loopback needs an API token, mutual TLS or --allow-insecure-listen."""
    with pytest.raises(ConfigError, match=r"^--listen: 0.0.0.0:50051 is not a loopback address"):
        load_config(_flags("--listen", "0.0.0.0:50051"), {}, None)
    with_token = load_config(_flags("--listen", "0.0.0.0:50051"), {"PINSCHED_API_TOKEN": "t"}, None)
    assert with_token.listen == "0.0.0.0:50051"
    allowed = _flags("--listen", "[::]:50051", "--allow-insecure-listen")
    assert load_config(allowed, {}, None).allow_insecure_listen is True
    assert load_config(_flags("--listen", "[::1]:0"), {}, None).listen == "[::1]:0"
    assert load_config(_flags("--listen", "localhost:7"), {}, None).listen == "localhost:7"


def test_client_id_and_secret_go_together() -> None:
    """The Pinterest OAuth client id without its secret is refused."""
    with pytest.raises(ConfigError, match=r"^PINSCHED_PINTEREST_CLIENT_ID: set"):
        load_config(None, {"PINSCHED_PINTEREST_CLIENT_ID": "app"}, None)


def test_retry_max_below_base_is_refused() -> None:
    """A maximum retry delay below the base delay is refused, naming its source."""
    env = {"PINSCHED_RETRY_BASE_DELAY_S": "10", "PINSCHED_RETRY_MAX_DELAY_S": "5"}
    with pytest.raises(ConfigError, match=r"^PINSCHED_RETRY_MAX_DELAY_S: retry_max_delay_s"):
        load_config(None, env, None)


def test_webhook_from_environment() -> None:
    """PINSCHED_WEBHOOK_URL and PINSCHED_WEBHOOK_SECRET define one endpoint."""
    env = {
        "PINSCHED_WEBHOOK_URL": "https://hooks.example.com/pinsched",
        "PINSCHED_WEBHOOK_SECRET": f"{WH_NEW}, {WH_OLD}",
        "PINSCHED_WEBHOOK_EVENT_TYPES": "job.delivered",
    }
    cfg = load_config(None, env, None)
    assert cfg.webhooks == (
        WebhookEndpoint(
            url="https://hooks.example.com/pinsched",
            secrets=(WH_NEW, WH_OLD),
            event_types=("job.delivered",),
        ),
    )


def test_webhook_url_without_secret_is_refused() -> None:
    """A webhook URL without a signing secret is refused, naming the secret variable."""
    with pytest.raises(ConfigError, match=r"^PINSCHED_WEBHOOK_SECRET: a webhook endpoint needs"):
        load_config(None, {"PINSCHED_WEBHOOK_URL": "https://h.example.com/"}, None)


def test_webhooks_from_toml_tables(tmp_path: Path) -> None:
    """`[[webhooks]]` tables define several endpoints with filters and timeouts."""
    path = _toml(
        tmp_path,
        f"""
[[webhooks]]
url = "https://a.example.com/hook"
secret = "{WH_A}"

[[webhooks]]
url = "https://b.example.com/hook"
secrets = ["{WH_B1}", "{WH_B2}"]
account_ids = ["acme"]
event_types = ["job.failed"]
timeout_s = 3
""",
    )
    cfg = load_config(None, {}, path)
    assert [w.url for w in cfg.webhooks] == [
        "https://a.example.com/hook",
        "https://b.example.com/hook",
    ]
    assert cfg.webhooks[0].secrets == (WH_A,)
    assert cfg.webhooks[1].secrets == (WH_B1, WH_B2)
    assert cfg.webhooks[1].account_ids == ("acme",)
    assert cfg.webhooks[1].timeout_s == 3.0


def test_environment_webhook_replaces_file_webhooks(tmp_path: Path) -> None:
    """A webhook from the environment replaces the file's endpoints, like any higher layer."""
    path = _toml(tmp_path, f'[[webhooks]]\nurl = "https://a.example.com/"\nsecret = "{WH_S}"\n')
    env = {"PINSCHED_WEBHOOK_URL": "https://env.example.com/", "PINSCHED_WEBHOOK_SECRET": WH_E}
    assert [w.url for w in load_config(None, env, path).webhooks] == ["https://env.example.com"]


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (
            f'url = "https://a.example.com/"\nsecret = "{WH_S}"\nretries = 3',
            r"webhooks\[0\]\.retries: unk",
        ),
        (f'secret = "{WH_S}"', r"webhooks\[0\]\.url: required"),
        ('url = "https://a.example.com/"', r"webhooks\[0\]\.secrets: a webhook endpoint needs"),
        (f'url = "http://169.254.169.254/"\nsecret = "{WH_S}"', r"webhooks\[0\]\.url: link-local"),
        (
            f'url = "https://a.example.com/"\nsecret = "{WH_S}"\ntimeout_s = 0',
            r"webhooks\[0\]\.timeo",
        ),
    ],
)
def test_bad_webhook_table_names_the_key(tmp_path: Path, table: str, message: str) -> None:
    """Every bad webhook table value raises ConfigError naming the table index and the key."""
    with pytest.raises(ConfigError, match=message):
        load_config(None, {}, _toml(tmp_path, f"[[webhooks]]\n{table}\n"))


def test_redacted_masks_secrets() -> None:
    """redacted() replaces every secret with *** and keeps everything else JSON-ready."""
    env = {
        "PINSCHED_API_TOKEN": "tok-123",
        "PINSCHED_SECRET_KEY": "key-456",
        "PINSCHED_PINTEREST_CLIENT_ID": "app",
        "PINSCHED_PINTEREST_CLIENT_SECRET": "sec-789",
        "PINSCHED_WEBHOOK_URL": "https://h.example.com/",
        "PINSCHED_WEBHOOK_SECRET": WH_ABC,
    }
    shown = load_config(None, env, None).redacted()
    text = json.dumps(shown)
    for secret in ("tok-123", "key-456", "sec-789", WH_ABC):
        assert secret not in text
    assert shown["api_token"] == "***"
    assert shown["pinterest_client_id"] == "app"
    assert shown["webhooks"][0]["secrets"] == ["***"]
    assert Config().redacted()["api_token"] is None


def test_secret_values_never_appear_in_errors(tmp_path: Path) -> None:
    """An invalid secret value is reported without echoing it."""
    path = _toml(tmp_path, "api_token = 12345678\n")
    with pytest.raises(ConfigError) as caught:
        load_config(None, {}, path)
    assert "12345678" not in str(caught.value)
    assert "api_token" in str(caught.value)


def test_config_error_is_a_value_error() -> None:
    """ConfigError subclasses ValueError so generic callers can catch it."""
    assert issubclass(ConfigError, ValueError)


def test_retention_days_from_every_layer(tmp_path: Path) -> None:
    """`retention_days` defaults to 30, comes from TOML, PINSCHED_RETENTION_DAYS or
    --retention-days, 0 keeps everything, and `config check` (redacted) shows it."""
    assert Config().retention_days == 30
    assert load_config(None, {}, _toml(tmp_path, "retention_days = 7\n")).retention_days == 7
    assert load_config(None, {"PINSCHED_RETENTION_DAYS": "0"}, None).retention_days == 0
    cfg = load_config(_flags("--retention-days", "90"), {"PINSCHED_RETENTION_DAYS": "5"}, None)
    assert cfg.retention_days == 90
    assert json.loads(json.dumps(cfg.redacted()))["retention_days"] == 90


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ({"env": "-1"}, r"^PINSCHED_RETENTION_DAYS: expected an integer >= 0, got '-1'"),
        ({"env": "1.5"}, r"^PINSCHED_RETENTION_DAYS: expected an integer, got '1.5'"),
        ({"env": "month"}, r"^PINSCHED_RETENTION_DAYS: expected an integer, got 'month'"),
        ({"flag": "-3"}, r"^--retention-days: expected an integer >= 0, got '-3'"),
        ({"flag": "ten"}, r"^--retention-days: expected an integer, got 'ten'"),
        ({"toml": "retention_days = -2"}, r"pinsched\.toml: retention_days: expected an integer"),
        ({"toml": "retention_days = 2.5"}, r"pinsched\.toml: retention_days: expected an integer"),
        ({"toml": "retention_days = true"}, r"pinsched\.toml: retention_days: expected an"),
    ],
)
def test_bad_retention_days_names_its_source(
    tmp_path: Path, source: dict[str, str], message: str
) -> None:
    """A negative or non-integer retention is refused with ConfigError naming its source."""
    env = {"PINSCHED_RETENTION_DAYS": source["env"]} if "env" in source else {}
    args = _flags("--retention-days", source["flag"]) if "flag" in source else None
    path = _toml(tmp_path, source["toml"] + "\n") if "toml" in source else None
    with pytest.raises(ConfigError, match=message):
        load_config(args, env, path)


def test_media_keys_default_and_layers(tmp_path: Path) -> None:
    """`media_lead_time_s` defaults to 2 h and `media_grace_s` to a day; both come from TOML
    and the environment."""
    assert (Config().media_lead_time_s, Config().media_grace_s) == (7200.0, 86400.0)
    cfg = load_config(
        None, {"PINSCHED_MEDIA_GRACE_S": "60"}, _toml(tmp_path, "media_lead_time_s = 600\n")
    )
    assert (cfg.media_lead_time_s, cfg.media_grace_s) == (600.0, 60.0)
    assert load_config(None, {}, _toml(tmp_path, "media_lead_time_s = 0\n")).media_lead_time_s == 0


@pytest.mark.parametrize("key", ["media_lead_time_s", "media_grace_s"])
@pytest.mark.parametrize("value", ["-1", '"soon"', "nan", "true"])
def test_bad_media_keys_are_refused_naming_the_key(tmp_path: Path, key: str, value: str) -> None:
    """A negative, non-numeric or non-finite media setting is a ConfigError naming the key."""
    with pytest.raises(ConfigError, match=key):
        load_config(None, {}, _toml(tmp_path, f"{key} = {value}\n"))
