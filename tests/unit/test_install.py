"""Reproducible installs: the locks pin every dependency pyproject.toml names, and what installs
orderflow (make, .ci/run through make, the Dockerfile) installs from a lock."""

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).parents[2]
PINNED = re.compile(r"^([A-Za-z0-9_.\-]+)==([^\s\\]+)", re.MULTILINE)


def pins(lock: str) -> dict[str, str]:
    text = (ROOT / lock).read_text()
    assert "--hash=sha256:" in text, f"{lock} has no hashes"
    options = [line for line in text.splitlines() if line.startswith("--")]
    assert not options, f"{lock} names an index or a wheel folder: {options}"
    return {canonicalize_name(name): version for name, version in PINNED.findall(text)}


def requirements(*extras: str) -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = list(project["dependencies"])
    for extra in extras:
        wanted += project["optional-dependencies"][extra]
    return [Requirement(r) for r in wanted]


def test_the_locks_pin_every_dependency_within_its_range() -> None:
    for lock, extras in (("requirements.lock", ()), ("requirements-dev.lock", ("dev",))):
        pinned = pins(lock)
        for requirement in requirements(*extras):
            name = canonicalize_name(requirement.name)
            assert name in pinned, f"{requirement.name} is not in {lock}: run `make lock`"
            assert requirement.specifier.contains(pinned[name], prereleases=True), (
                f"{lock} pins {name}=={pinned[name]}, pyproject wants {requirement}: `make lock`"
            )


def test_every_install_path_uses_a_lock() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert "--require-hashes -r requirements-dev.lock" in makefile
    assert "pip install --quiet --no-deps -e ." in makefile
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "--require-hashes -r requirements.lock" in dockerfile
    assert "--no-deps" in dockerfile
    assert "make test" in (ROOT / ".ci" / "run").read_text()
