"""deploy/requirements*.txt, the hashed locks that deploy/install.sh installs with
`pip install --require-hashes --no-deps` (made by `make lock`, scripts/lock.sh), read with
`packaging` against pyproject.toml, without the network.

Checked: every requirement of pyproject.toml (and of the postgres extra, in its lock) is pinned
at a version its range allows, with what its own extras bring (requests[socks]: PySocks); every
pin carries a sha256 hash; the names pyproject.toml asks for are exactly those the lock was made
for (uv's annotation "via peluit (pyproject.toml)"), so a dependency added, dropped or renamed
without `make lock` fails here; the two runtime locks pin the same versions, and only the
postgres one has the driver. [build-system].requires is pinned in the build lock the same way.

Not checked here: that the hashes are those of the index's files, for x86_64 and aarch64 alike.
`make lock` resolves for both architectures and fails when they differ; test_install.py
installs the locks for real, where pip checks every file it fetches.
"""

from __future__ import annotations

import copy
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

REPO = Path(__file__).parents[2]
DEPLOY = REPO / "deploy"
# uv's annotation of what pyproject.toml itself requires (scripts/lock.sh compiles pyproject.toml).
DIRECT = "peluit (pyproject.toml)"
HASH = re.compile(r"--hash=sha256:[0-9a-f]{64}")
# Where the locks are installed: Debian 12's Python on either architecture.
ENVIRONMENTS = [
    {"python_version": "3.11", "python_full_version": "3.11.2", "sys_platform": "linux",
     "platform_system": "Linux", "os_name": "posix", "implementation_name": "cpython",
     "platform_python_implementation": "CPython", "platform_machine": machine}
    for machine in ("x86_64", "aarch64")
]


@dataclass(frozen=True)
class Pin:
    name: NormalizedName
    version: Version
    hashes: int
    # The packages uv says require it; DIRECT among them when pyproject.toml does.
    via: frozenset[str]


@dataclass(frozen=True)
class Lock:
    pins: dict[NormalizedName, Pin]
    problems: tuple[str, ...]


def read_lock(text: str) -> Lock:
    """The pins of a requirements file as uv writes it: a requirement line continued with
    backslashes by its --hash options, then its `# via` comment lines."""
    entries: list[tuple[str, set[str]]] = []
    problems: list[str] = []
    continued = False
    for raw in text.splitlines():
        line = raw.strip()
        if continued:
            entries[-1] = (entries[-1][0] + " " + line.rstrip("\\"), entries[-1][1])
        elif raw.startswith("    #") and entries:
            # "# via NAME" on one line, or "# via" then one "#   NAME" line each.
            via = line.removeprefix("#").strip().removeprefix("via").strip()
            if via:
                entries[-1][1].add(via)
        elif not line or line.startswith("#"):
            pass  # the header
        elif line.startswith("-"):
            # An option (an index, a local path, an editable) would change what pip installs.
            problems.append(f"an option line in a lock: {line}")
        else:
            entries.append((line.rstrip("\\"), set()))
        continued = bool(line) and raw.endswith("\\")
    pins: dict[NormalizedName, Pin] = {}
    for line, via in entries:
        words = line.split()
        hashes = [w for w in words if w.startswith("--hash=")]
        requirement = Requirement(" ".join(w for w in words if not w.startswith("--hash=")))
        specs = list(requirement.specifier)
        if len(specs) != 1 or specs[0].operator != "==" or "*" in specs[0].version:
            problems.append(f"{requirement}: not pinned to one version with ==")
            continue
        if not hashes or not all(HASH.fullmatch(h) for h in hashes):
            problems.append(f"{requirement}: no sha256 hash (pip --require-hashes refuses it)")
        name = canonicalize_name(requirement.name)
        if name in pins:
            problems.append(f"{name} pinned twice")
        pins[name] = Pin(name, Version(specs[0].version), len(hashes), frozenset(via))
    return Lock(pins, tuple(problems))


def _applies(requirement: Requirement) -> bool:
    marker: Marker | None = requirement.marker
    return marker is None or any(marker.evaluate(env) for env in ENVIRONMENTS)


def _extra_names(requirement: Requirement) -> set[NormalizedName]:
    """What ``requirement``'s extras (requests[socks]) bring, as the installed distribution of
    the development virtualenv declares it (make install put every runtime dependency there)."""
    names: set[NormalizedName] = set()
    for extra in requirement.extras:
        for line in metadata.requires(requirement.name) or []:
            brought = Requirement(line)
            # Its own dependencies too (no marker, or one of the platform's): the lock needs
            # them all the same.
            if brought.marker is None or any(
                    brought.marker.evaluate({**env, "extra": extra}) for env in ENVIRONMENTS):
                names.add(canonicalize_name(brought.name))
    return names


def lock_problems(requirements: list[str], lock: Lock, *, direct: bool = True) -> list[str]:
    """Why ``lock`` does not install ``requirements`` (PEP 508 strings); [] when it does.
    ``direct``: the lock's "via" annotations must name exactly these requirements as the
    project's own (a lock compiled from pyproject.toml)."""
    problems = list(lock.problems)
    wanted = [Requirement(r) for r in requirements]
    wanted = [r for r in wanted if _applies(r)]
    for requirement in wanted:
        name = canonicalize_name(requirement.name)
        pin = lock.pins.get(name)
        if pin is None:
            problems.append(f"{requirement}: not in the lock (make lock)")
            continue
        if not requirement.specifier.contains(pin.version, prereleases=True):
            problems.append(f"{requirement}: the lock pins {pin.version} (make lock)")
        for brought in sorted(_extra_names(requirement) - lock.pins.keys()):
            problems.append(f"{requirement}: {brought}, of its extras, is not in the lock")
    if direct:
        asked = {canonicalize_name(r.name) for r in wanted}
        made_for = {n for n, pin in lock.pins.items() if DIRECT in pin.via}
        for name in sorted(asked - made_for):
            problems.append(f"{name}: pyproject.toml requires it, the lock was not made for it "
                            "(make lock)")
        for name in sorted(made_for - asked):
            problems.append(f"{name}: the lock was made for it, pyproject.toml no longer "
                            "requires it (make lock)")
    return problems


def _pyproject() -> dict[str, Any]:
    with (REPO / "pyproject.toml").open("rb") as f:
        return tomllib.load(f)


def runtime_requirements(pyproject: dict[str, Any], extras: tuple[str, ...]) -> list[str]:
    project = pyproject["project"]
    found: list[str] = list(project["dependencies"])
    for extra in extras:
        found += project["optional-dependencies"][extra]
    return found


def _lock(name: str) -> Lock:
    return read_lock((DEPLOY / name).read_text())


@pytest.mark.parametrize(("name", "extras"), [
    ("requirements.txt", ()),
    ("requirements-postgres.txt", ("postgres",)),
])
def test_the_runtime_locks_fit_pyproject(name: str, extras: tuple[str, ...]) -> None:
    lock = _lock(name)
    assert lock_problems(runtime_requirements(_pyproject(), extras), lock) == []
    # The installer compiles the translations with the lock's Babel (flask-babel's).
    assert "babel" in lock.pins
    assert all(pin.hashes >= 1 for pin in lock.pins.values())


def test_the_build_lock_fits_the_build_system() -> None:
    # What install.sh builds Peluit (and stem's source archive) with, without build isolation.
    requires = _pyproject()["build-system"]["requires"]
    lock = _lock("requirements-build.txt")
    assert lock_problems(requires, lock, direct=False) == []
    assert {"setuptools", "wheel"} <= lock.pins.keys()


def test_the_two_runtime_locks_pin_the_same_versions() -> None:
    sqlite, postgres = _lock("requirements.txt").pins, _lock("requirements-postgres.txt").pins
    differ = {n: (pin.version, postgres[n].version) for n, pin in sqlite.items()
              if n in postgres and postgres[n].version != pin.version}
    assert differ == {}
    assert sqlite.keys() < postgres.keys(), sorted(sqlite.keys() - postgres.keys())
    # The driver, and its compiled libpq (psycopg[binary]), only where PostgreSQL is chosen.
    assert {"psycopg", "psycopg-binary"} <= postgres.keys() - sqlite.keys()
    assert postgres["psycopg-binary"].version == postgres["psycopg"].version


def _with_dependencies(change: Callable[[list[str]], None]) -> list[str]:
    pyproject = copy.deepcopy(_pyproject())
    change(pyproject["project"]["dependencies"])
    return lock_problems(runtime_requirements(pyproject, ()), _lock("requirements.txt"))


def test_a_dependency_added_without_locking_again_fails() -> None:
    problems = _with_dependencies(lambda deps: deps.append("no-such-dependency>=1,<2"))
    assert problems == ["no-such-dependency<2,>=1: not in the lock (make lock)",
                        "no-such-dependency: pyproject.toml requires it, the lock was not made "
                        "for it (make lock)"]


def test_a_dependency_dropped_or_moved_out_of_its_pin_fails() -> None:
    def drop_stem_move_flask(deps: list[str]) -> None:
        deps.remove(next(d for d in deps if d.startswith("stem")))
        deps[deps.index(next(d for d in deps if d.startswith("flask>=")))] = "flask>=9"
    problems = _with_dependencies(drop_stem_move_flask)
    assert problems == [
        f"flask>=9: the lock pins {_lock('requirements.txt').pins['flask'].version} (make lock)",
        "stem: the lock was made for it, pyproject.toml no longer requires it (make lock)",
    ]


def test_an_unhashed_or_loose_line_fails() -> None:
    text = (DEPLOY / "requirements.txt").read_text()
    pins = _lock("requirements.txt").pins
    # stem's hashes (of its source archive) removed, and a range where segno's pin belongs.
    unhashed = re.sub(r"^(stem==\S+) \\\n(?:[ \t]+--hash=\S+(?: \\)?\n)+", r"\1\n", text,
                      flags=re.M)
    loose = re.sub(r"^segno==", "segno>=", unhashed, flags=re.M)
    assert loose.count("--hash=") < text.count("--hash=") and loose.count(">=") == 1
    assert read_lock(loose).problems == (
        f"segno>={pins['segno'].version}: not pinned to one version with ==",
        f"stem=={pins['stem'].version}: no sha256 hash (pip --require-hashes refuses it)",
    )
