"""The lock file (#21): `make test` refuses a lock that pyproject.toml has moved away from, in
one line that says what changed, before installing or testing anything."""

from __future__ import annotations

import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A copy of what `make test` reads first: the Makefile, the lock and its checker."""
    for name in ("Makefile", "pyproject.toml", "requirements.lock", ".ci/lockfile.py"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, tmp_path / name)
    return tmp_path


def make_test(checkout: Path) -> subprocess.CompletedProcess[str]:
    # BIN points nowhere: if the check let a stale lock through, nothing could install or run.
    return subprocess.run(["make", "-C", str(checkout), "test", "VENV=/nonexistent-venv"],
                          capture_output=True, text=True, timeout=120)


def edit_requirements(pyproject: Path, old: str, new: str | None) -> None:
    text = pyproject.read_text()
    line = f'    "{old}",\n'
    assert line in text
    pyproject.write_text(text.replace(line, f'    "{new}",\n' if new else ""))


def test_the_committed_lock_matches_pyproject():
    done = subprocess.run(["python3", str(ROOT / ".ci/lockfile.py"), "check", "--pyproject",
                           str(ROOT / "pyproject.toml"), "--lock", str(ROOT / "requirements.lock")],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_make_test_refuses_a_stale_lock_in_one_line(checkout):
    edit_requirements(checkout / "pyproject.toml", "numpy>=1.26", "numpy>=99")
    done = make_test(checkout)
    assert done.returncode != 0
    ours = [line for line in done.stderr.splitlines() if not line.startswith("make")]
    assert ours == ["requirements.lock is stale: pyproject.toml adds 'numpy>=99', drops "
                    "'numpy>=1.26' since the lock was made; run `make lock` and commit it"]
    assert "pip" not in done.stdout  # refused before anything was installed


def test_a_dropped_or_added_requirement_is_stale_too(checkout):
    edit_requirements(checkout / "pyproject.toml", "umap-learn>=0.5.5", None)
    done = make_test(checkout)
    assert done.returncode != 0 and "drops 'umap-learn>=0.5.5'" in done.stderr


def test_every_pinned_package_has_hashes_and_torch_is_the_cpu_build():
    pins: dict[str, str] = {}
    hashed: set[str] = set()
    name = ""
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        if line[:1].isalnum():
            name, _, version = line.split(" ")[0].partition("==")
            pins[name] = version
        elif "--hash=sha256:" in line:
            hashed.add(name)
    assert pins and set(pins) == hashed
    assert pins["torch"] == "2.13.0+cpu"
    direct = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert all(r.split("=")[0].split(">")[0].split("[")[0].split("<")[0] in pins for r in direct)
