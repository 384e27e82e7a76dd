"""docker-compose.yml and the Dockerfile, checked without a Docker engine (none runs here):
every command exists, every image is pinned, every mounted file and COPY source exists, every
ORDERFLOW_* variable is a setting, and .env.example names every variable compose requires."""

import re
from pathlib import Path
from typing import Any

import yaml

from starter.app import app
from starter.cli import main  # noqa: F401  (registers every command group)
from workers.settings import Settings

ROOT = Path(__file__).parents[2]
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]


def commands() -> set[str]:
    names = set()
    for command in app.registered_commands:
        assert command.callback is not None
        names.add(command.name or command.callback.__name__.replace("_", "-"))
    return names


def test_every_orderflow_service_runs_a_real_command() -> None:
    ours = {name: s for name, s in SERVICES.items() if s.get("build") == "."}
    assert {"setup", "worker", "codec-server", "inbox"} <= set(ours)
    for name, service in ours.items():
        assert service["command"][0] in commands(), f"{name}: {service['command']}"


def test_images_are_pinned() -> None:
    for name, service in SERVICES.items():
        if "image" in service:
            image, _, tag = service["image"].partition(":")
            assert tag and tag != "latest" and re.search(r"\d+\.\d+", tag), (name, image, tag)
    dockerfile = (ROOT / "Dockerfile").read_text()
    base = re.search(r"^FROM (\S+)", dockerfile, re.MULTILINE)
    assert base and re.search(r":\d+\.\d+\.\d+", base.group(1)), base


def test_mounted_files_and_copied_sources_exist() -> None:
    for name, service in SERVICES.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name} mounts missing {source}"
    for source in re.findall(r"^COPY (\S+(?: \S+)*) \S+$", (ROOT / "Dockerfile").read_text(), re.M):
        for item in source.split():
            assert (ROOT / item).exists(), f"Dockerfile copies missing {item}"


def test_every_variable_is_a_setting_and_every_required_one_is_in_env_example() -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    fields = {f"ORDERFLOW_{name.upper()}" for name in Settings.model_fields}
    used = set(re.findall(r"^\s+(ORDERFLOW_[A-Z_]+):", text, re.MULTILINE))
    assert used and used <= fields, used - fields
    required = set(re.findall(r"\$\{([A-Z_]+):\?", text))
    example = (ROOT / ".env.example").read_text()
    listed = set(re.findall(r"^([A-Z_]+)=", example, re.MULTILINE))
    assert required <= listed, required - listed
    referenced = set(re.findall(r"\$\{([A-Z_]+)", text))
    assert referenced <= listed, referenced - listed
