"""The Docker Compose example (examples/compose/) holds together without Docker: its YAML has
the structure Compose reads, and everything it names exists in the project: the Dockerfile and
its entrypoint, the commands and flags of `pinsched`, the daemons' configuration keys, the
database and sandbox it points them at."""

from __future__ import annotations

import argparse
import re
import shlex
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml  # type: ignore[import-untyped]

from pinsched.cli.parser import build_parser
from pinsched.config import load_config
from pinsched.config_fields import FIELDS, WEBHOOK_ENV, env_name
from pinsched.sandbox import cli as sandbox_cli

ROOT = Path(__file__).resolve().parents[2]
FOLDER = ROOT / "examples" / "compose"
DAEMONS = ("pinsched-1", "pinsched-2", "pinsched-3")
#: Variables the daemon reads besides its configuration fields (`pinsched health`, the CLI).
OTHER_ENV = frozenset({"PINSCHED_HEALTH_LISTEN", "PINSCHED_TARGET", "PINSCHED_CONFIG"})


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((FOLDER / "docker-compose.yml").read_text())
    return data


def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose["services"]
    return found


def pinsched_args(command: list[str]) -> list[str]:
    """The arguments of `pinsched` in a service's command or healthcheck (the image's
    entrypoint is `pinsched`; a healthcheck names it)."""
    if command[:1] == ["CMD"]:
        assert command[1] == "pinsched", command
        return command[2:]
    return command


def test_the_file_has_compose_structure(compose: dict[str, Any]) -> None:
    """Top-level keys Compose knows; every service has an image; named volumes are declared;
    depends_on names services that have a healthcheck when it waits for them to be healthy."""
    assert set(compose) <= {"name", "services", "volumes", "networks", "x-pinsched"}
    found = services(compose)
    assert set(found) == {"postgres", "sandbox", *DAEMONS}
    volumes = set(compose["volumes"])
    for name, service in found.items():
        assert isinstance(service.get("image"), str), name
        for mount in service.get("volumes", []):
            source = mount.split(":", 1)[0]
            assert source in volumes, (name, source)
        for other, rule in service.get("depends_on", {}).items():
            assert other in found, (name, other)
            if rule["condition"] == "service_healthy":
                assert "healthcheck" in found[other], other
        assert "healthcheck" in service, name


def test_host_ports_are_loopback_and_distinct(compose: dict[str, Any]) -> None:
    """Published ports are bound to 127.0.0.1 (the daemons listen without authentication)
    and no two services publish the same host port."""
    seen: list[str] = []
    for service in services(compose).values():
        for spec in service.get("ports", []):
            host, port, _ = spec.split(":")
            assert host == "127.0.0.1", spec
            seen.append(port)
    assert len(seen) == len(set(seen))


def test_the_image_is_built_from_the_dockerfile_with_pinsched_as_entrypoint(
    compose: dict[str, Any],
) -> None:
    """The build context holds the Dockerfile, whose entrypoint is `pinsched` (the services'
    commands are its arguments)."""
    for name in ("sandbox", *DAEMONS):
        build = services(compose)[name]["build"]
        dockerfile = (FOLDER / build["context"] / build["dockerfile"]).resolve()
        assert dockerfile == ROOT / "Dockerfile"
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r'^ENTRYPOINT \["pinsched"\]$', text, re.MULTILINE)


def test_commands_and_healthchecks_are_real_pinsched_commands(compose: dict[str, Any]) -> None:
    """Every daemon's command and healthcheck parse with pinsched's own parser, the sandbox's
    with the sandbox's."""
    parser = build_parser()
    for name in DAEMONS:
        service = services(compose)[name]
        assert parser.parse_args(pinsched_args(service["command"])).command == "serve"
        health = parser.parse_args(pinsched_args(service["healthcheck"]["test"]))
        assert health.command == "health"
    sandbox = services(compose)["sandbox"]["command"]
    assert sandbox[0] == "sandbox"
    p = argparse.ArgumentParser()
    sandbox_cli.add_arguments(p)
    args = p.parse_args(sandbox[1:])
    assert (args.host, args.port, args.seed_demo) == ("0.0.0.0", 8081, True)


def image_env() -> dict[str, str]:
    """The Dockerfile's `ENV` settings (the image's defaults the services add to)."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    env: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("ENV "):
            for pair in shlex.split(line[4:]):
                key, _, value = pair.partition("=")
                env[key] = value
    return env


def test_every_daemon_variable_is_a_real_setting_and_the_config_loads(
    compose: dict[str, Any],
) -> None:
    """Each PINSCHED_* variable is a configuration field (or one the CLI reads), and the
    image's environment with the daemon's on top loads into a valid Config, as `pinsched serve`
    would load it (listening on all interfaces needs the insecure-listen override here)."""
    known = {env_name(name) for name in FIELDS} | set(WEBHOOK_ENV.values()) | OTHER_ENV
    base = image_env()
    assert base["PINSCHED_LISTEN"] == "0.0.0.0:50051"
    for name in DAEMONS:
        env = {k: str(v) for k, v in services(compose)[name]["environment"].items()}
        unknown = {k for k in [*env, *base] if k.startswith("PINSCHED_")} - known
        assert not unknown, (name, unknown)
        config = load_config(None, {**base, **env}, None)
        assert config.db_path.startswith("postgresql://")
        assert config.listen == "0.0.0.0:50051"


def test_the_daemons_point_at_the_compose_database_and_sandbox(compose: dict[str, Any]) -> None:
    """PINSCHED_DB names the postgres service with its user, password and database, and the
    API base names the sandbox service on the port it listens on."""
    found = services(compose)
    pg = found["postgres"]["environment"]
    sandbox_port = found["sandbox"]["command"][found["sandbox"]["command"].index("--port") + 1]
    for name in DAEMONS:
        env = found[name]["environment"]
        db = urlsplit(env["PINSCHED_DB"])
        assert (db.hostname, db.port) == ("postgres", 5432)
        assert (db.username, db.password) == (pg["POSTGRES_USER"], pg["POSTGRES_PASSWORD"])
        assert db.path.strip("/") == pg["POSTGRES_DB"]
        base = urlsplit(env["PINSCHED_PINTEREST_API_BASE"])
        assert (base.hostname, str(base.port), base.path) == ("sandbox", sandbox_port, "/v5")


def test_the_readme_commands_name_real_services_and_commands(compose: dict[str, Any]) -> None:
    """Every `docker compose exec SERVICE pinsched ...` line of the README names a service of
    the file and a command pinsched parses."""
    parser = build_parser()
    lines = [
        line.strip()
        for line in (FOLDER / "README.md").read_text().splitlines()
        if line.strip().startswith("docker compose exec ")
    ]
    assert lines
    for line in lines:
        service, program, *args = shlex.split(line, comments=True)[3:]
        assert service in services(compose), line
        assert program == "pinsched", line
        parser.parse_args(args)
