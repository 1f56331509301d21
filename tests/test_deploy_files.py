"""The files a Heroku-style platform builds from: one package-manager file,
``.python-version``, a ``requirements.txt`` that still matches ``pyproject.toml``,
and ``app.json`` for one-click deploys.

When one of these fails after a change to ``pyproject.toml``'s dependencies,
run ``bin/lock`` and commit the new ``requirements.txt``.
"""

from __future__ import annotations

import json
import re
import secrets
import tomllib
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

from core.settings import ConfigError, Settings
from tests.kit.buildpack import package_manager_files, requested_python

ROOT = Path(__file__).resolve().parent.parent
OURSELVES = "callstate (pyproject.toml)"


def pyproject() -> dict[str, object]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))


def runtime_requirements() -> dict[str, Requirement]:
    project = pyproject()["project"]
    assert isinstance(project, dict)
    found = [Requirement(text) for text in project["dependencies"]]
    return {canonicalize_name(r.name): r for r in found}


def locked() -> tuple[dict[str, Requirement], dict[str, set[str]]]:
    """requirements.txt as ``name -> pin`` and ``name -> what it is there for``
    (the ``# via`` annotations: package names, or ``callstate (pyproject.toml)``)."""
    pins: dict[str, Requirement] = {}
    via: dict[str, set[str]] = {}
    current: str | None = None
    for raw in (ROOT / "requirements.txt").read_text("utf-8").splitlines():
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            comment = line.lstrip("#").strip()
            if current is None:
                continue  # the header
            if comment.startswith("via"):
                comment = comment[3:].strip()
            if comment:
                via[current].add(comment if comment == OURSELVES else canonicalize_name(comment))
            continue
        requirement = Requirement(line)
        current = canonicalize_name(requirement.name)
        pins[current] = requirement
        via[current] = set()
    return pins, via


def test_exactly_one_package_manager_file() -> None:
    """The buildpack builds only from exactly one package-manager file: ours is requirements.txt."""
    assert package_manager_files(ROOT) == ["requirements.txt"]


def test_python_version_is_pinned_and_allowed() -> None:
    """.python-version names a Python the buildpack builds and requires-python allows."""
    version = requested_python(ROOT)
    project = pyproject()["project"]
    assert isinstance(project, dict)
    padded = version if version.count(".") == 2 else f"{version}.0"
    assert SpecifierSet(project["requires-python"]).contains(padded), version


def test_requirements_are_exact_pins_from_the_default_index() -> None:
    """Every line is ``name==version`` (with a marker at most): no options, no
    index URLs or hosts, no direct or editable references."""
    for raw in (ROOT / "requirements.txt").read_text("utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        assert not line.startswith("-"), f"an option in requirements.txt: {line}"
        assert "://" not in line and " @ " not in line, f"a URL in requirements.txt: {line}"
        requirement = Requirement(line)
        specifiers = list(requirement.specifier)
        assert len(specifiers) == 1 and specifiers[0].operator == "==", line
        assert not requirement.extras, f"extras belong in pyproject.toml: {line}"


def test_every_runtime_dependency_is_pinned_within_its_range() -> None:
    """Each [project] dependency has a pin its specifier accepts."""
    pins, _ = locked()
    for name, requirement in runtime_requirements().items():
        assert name in pins, f"{name} is in pyproject.toml but not pinned: run bin/lock"
        pinned = next(iter(pins[name].specifier)).version
        assert requirement.specifier.contains(pinned, prereleases=True), (
            f"{name}=={pinned} is outside pyproject.toml's {requirement.specifier}: run bin/lock"
        )


def test_nothing_is_pinned_that_the_runtime_does_not_need() -> None:
    """Only [project] dependencies come from pyproject.toml, and every other pin is
    needed by another pin: no test or dev tool, nothing left over."""
    pins, via = locked()
    runtime = set(runtime_requirements())
    direct = {name for name, reasons in via.items() if OURSELVES in reasons}
    assert direct == runtime, (
        f"pinned for pyproject.toml but not a runtime dependency: {sorted(direct - runtime)}; "
        f"missing: {sorted(runtime - direct)}: run bin/lock"
    )
    for name, reasons in via.items():
        assert reasons, f"{name} is pinned with no reason given (hand-edited?): run bin/lock"
        orphans = {r for r in reasons if r != OURSELVES and r not in pins}
        assert not orphans, f"{name} is pinned for packages no longer pinned: {orphans}"


@pytest.mark.parametrize("tool", ["honcho", "fakeredis", "pytest", "uv"])
def test_dev_tools_stay_out_of_the_runtime(tool: str) -> None:
    """bin/start's and bin/test's tools are extras, never deployed."""
    pins, _ = locked()
    assert tool not in pins
    assert tool not in runtime_requirements()


def test_lock_command_is_the_one_the_docs_give() -> None:
    """requirements.txt says how it was made, and the contributors' guide tells the
    same command."""
    header = (ROOT / "requirements.txt").read_text("utf-8").splitlines()[:3]
    assert any(re.search(r"#\s+bin/lock\b", line) for line in header), header
    assert "bin/lock" in (ROOT / "docs" / "contributing.md").read_text("utf-8")


# -- app.json, the one-click deploy ----------------------------------------------------

# Set by the platform (PORT), by add-ons (REDIS_URL; DATABASE_URL, where a
# database is attached), by the buildpack, by dyno size (WEB_CONCURRENCY) and by
# the Procfile (PROMETHEUS_MULTIPROC_DIR): a value in app.json would override theirs.
PLATFORM_SET = {
    "PORT",
    "REDIS_URL",
    "DATABASE_URL",
    "WEB_CONCURRENCY",
    "PROMETHEUS_MULTIPROC_DIR",
}
# The page whose "## Configuration" table lists every variable.
CONFIGURATION_PAGE = ROOT / "docs" / "operations.md"


def app_json() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((ROOT / "app.json").read_text("utf-8"))
    return loaded


def documented_variables() -> set[str]:
    """The variables of the configuration table (the first column's names)."""
    text = CONFIGURATION_PAGE.read_text("utf-8")
    table = text.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    names: set[str] = set()
    for row in table.splitlines():
        if row.startswith("| `"):
            names.update(re.findall(r"`([A-Z][A-Z0-9_]+)`", row.split("|")[1]))
    return names


class RecordingEnvironment(dict[str, str]):
    """An empty environment that notes every variable asked of it."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:
        self.asked.add(key)
        return super().get(key, default)


def test_the_configuration_table_lists_every_variable_the_code_reads() -> None:
    """Each variable Settings.from_env reads has a row in the configuration table, and
    each row names a variable it reads."""
    environment = RecordingEnvironment()
    Settings.from_env(environment)
    assert "REDIS_URL" in environment.asked  # the recording sees the reads
    assert documented_variables() == environment.asked


def test_app_json_runs_the_procfile_on_redis() -> None:
    """app.json starts one web and one worker dyno (Procfile types) with a Redis add-on
    and offers PostgreSQL for the call history."""
    manifest = app_json()
    procfile = {
        line.split(":", 1)[0]
        for line in (ROOT / "Procfile").read_text("utf-8").splitlines()
        if ":" in line and not line.startswith("#")
    }
    formation = manifest["formation"]
    assert {"web", "worker"} <= set(formation) <= procfile
    assert all(formation[kind]["quantity"] == 1 for kind in ("web", "worker"))
    # Redis (REDIS_URL), and PostgreSQL (DATABASE_URL: the call history, offered
    # with what it buys said in the description; its plan is the deployer's choice).
    addons = {a["plan"].split(":")[0]: a["as"] for a in manifest["addons"]}
    assert addons == {"heroku-redis": "REDIS", "heroku-postgresql": "DATABASE"}
    assert "PostgreSQL" in manifest["description"] and manifest["success_url"] == "/wallboard"
    assert manifest["buildpacks"] == [{"url": "heroku/python"}]


def test_app_json_describes_every_documented_variable() -> None:
    """Every variable the configuration table lists (but those the platform sets) is
    in app.json with a description, and nothing else is."""
    env = app_json()["env"]
    assert set(env) == documented_variables() - PLATFORM_SET
    for name, spec in env.items():
        assert len(spec.get("description", "")) > 20, name
        assert "value" in spec or spec.get("generator") == "secret", name


def test_app_json_defaults_are_the_code_defaults_and_secrets_are_generated() -> None:
    """Its values are what the code assumes when a variable is unset, and the token and
    key a one-click deploy generates (64 hex digits) are accepted as every-tenant secrets."""
    env = app_json()["env"]
    generated = {name for name, spec in env.items() if spec.get("generator") == "secret"}
    assert generated == {"WEBHOOK_TOKEN", "API_KEY"}
    values = {name: spec["value"] for name, spec in env.items() if "value" in spec}
    assert Settings.from_env(values) == Settings.from_env({})
    secret = secrets.token_hex(32)
    settings = Settings.from_env({**values, "WEBHOOK_TOKEN": secret, "API_KEY": secret[::-1]})
    assert settings.webhook_tokens == {secret: "*"}
    assert settings.api_keys == {secret[::-1]: "*"}


@pytest.mark.parametrize("name", ["WEBHOOK_TOKEN", "API_KEY"])
def test_a_single_secret_given_as_a_pair_is_refused(name: str) -> None:
    """WEBHOOK_TOKEN / API_KEY hold one bare secret: a pair there is a mistake, named."""
    with pytest.raises(ConfigError, match=f"{name} is one bare secret") as caught:
        Settings.from_env({name: "s3cret:acme"})
    assert "s3cret" not in str(caught.value)
