"""The lock file: `make lock` writes it, `make install` and `make test` check it is not stale.

requirements.lock pins every package embedpipe installs (direct and transitive) to one version
with its hashes, for CPython 3.11 on Linux x86-64. It is compiled by uv (`uv pip compile
--generate-hashes`) and installed by `make install`: pip installs the lock's pinned uv, which
syncs .venv to the lock (`uv pip sync --require-hashes`: no resolver runs at install time).
Its header lists the requirements of pyproject.toml it was made from; `check` compares
them with pyproject.toml now and prints one line when they differ.

Usage:
    python .ci/lockfile.py check [--pyproject pyproject.toml] [--lock requirements.lock]
    python .ci/lockfile.py compile [--lock requirements.lock] [--find-links DIR ...]
    python .ci/lockfile.py pick uv [--lock requirements.lock]   # one pin with its hashes

`make lock` passes the wheel folders of the pip configuration (FIND_LINKS in the Makefile).

Standard library only: `check` runs before .venv exists.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

INPUT_PREFIX = "#   input: "
PYTHON_VERSION = "3.11"
# manylinux_2_28 is the oldest glibc the pinned wheels need (torch's CPU wheel).
PLATFORM = "x86_64-manylinux_2_28"
UV_VERSION = "0.13.9"


def requirements(pyproject: Path) -> list[str]:
    """pyproject.toml's requirements, one string each, extras prefixed (`[dev] pytest>=8`)."""
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    found = [_normal(r) for r in project.get("dependencies", [])]
    for extra, reqs in sorted(project.get("optional-dependencies", {}).items()):
        found += [f"[{extra}] {_normal(r)}" for r in reqs]
    return found


def _normal(requirement: str) -> str:
    return "".join(requirement.split())


def locked_inputs(lock: Path) -> list[str]:
    """The requirements the lock was made from, as its header lists them."""
    return [
        line[len(INPUT_PREFIX) :].strip()
        for line in lock.read_text(encoding="utf-8").splitlines()
        if line.startswith(INPUT_PREFIX)
    ]


def stale_reason(pyproject: Path, lock: Path) -> str | None:
    """None when the lock was made from pyproject.toml's requirements as they are now."""
    if not lock.exists():
        return f"{lock.name} is missing: run `make lock`"
    wanted, locked = requirements(pyproject), locked_inputs(lock)
    if not locked:
        return f"{lock.name} has no input list in its header: run `make lock`"
    added = [r for r in wanted if r not in locked]
    dropped = [r for r in locked if r not in wanted]
    if not added and not dropped:
        return None
    changes = [f"adds {r!r}" for r in added] + [f"drops {r!r}" for r in dropped]
    return (
        f"{lock.name} is stale: {pyproject.name} {', '.join(changes)} since the lock was made;"
        " run `make lock` and commit it"
    )


def _uv() -> list[str]:
    """A uv to compile with: .venv's, then PATH's, else a pinned one fetched into a temp dir."""
    here = Path(".venv/bin/uv")
    if here.exists():
        return [str(here)]
    if found := shutil.which("uv"):
        return [found]
    target = Path(tempfile.mkdtemp(prefix="embedpipe-uv-"))
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--target", str(target),
         f"uv=={UV_VERSION}"],
        check=True,
    )
    return [str(target / "bin" / "uv")]


def compile_lock(pyproject: Path, lock: Path, find_links: list[str]) -> None:
    """Resolve pyproject.toml (with the dev extra) into `lock`, hashes and input list included."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "lock.txt"
        command = [
            *_uv(), "pip", "compile", str(pyproject), "--extra", "dev", "--generate-hashes",
            "--python-version", PYTHON_VERSION, "--python-platform", PLATFORM,
            "--no-header", "--quiet", "-o", str(out),
        ]
        for folder in find_links:
            command += ["--find-links", folder]
        subprocess.run(command, check=True)
        header = [
            "# requirements.lock: every package embedpipe installs, pinned with hashes, for",
            f"# CPython {PYTHON_VERSION} on Linux x86-64 ({PLATFORM}). Written by `make lock`",
            "# (uv pip compile --generate-hashes); installed by `make install` with",
            "# uv pip sync --require-hashes (no resolver). Do not edit by hand.",
            "# inputs (pyproject.toml's requirements this lock was made from; `make test` checks):",
            *(INPUT_PREFIX + r for r in requirements(pyproject)),
        ]
        lock.write_text("\n".join(header) + "\n" + out.read_text(encoding="utf-8"), "utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["check", "compile", "pick"])
    parser.add_argument("package", nargs="?", help="with pick: the package whose pin to print")
    parser.add_argument("--pyproject", type=Path, default=Path("pyproject.toml"))
    parser.add_argument("--lock", type=Path, default=Path("requirements.lock"))
    parser.add_argument("--find-links", action="append", default=[],
                        help="a folder of wheels the lock may take packages from (repeatable)")
    args = parser.parse_args(argv)
    if args.command == "check":
        reason = stale_reason(args.pyproject, args.lock)
        if reason:
            print(reason, file=sys.stderr)
            return 1
        return 0
    if args.command == "pick":
        print(pick(args.lock, args.package))
        return 0
    compile_lock(args.pyproject, args.lock, args.find_links)
    print(f"wrote {args.lock} ({sum(1 for _ in _pins(args.lock))} packages)")
    return 0


def pick(lock: Path, package: str) -> str:
    """The lock's lines for one package (its pin and hashes), as a requirements file."""
    picked, inside = [], False
    for line in lock.read_text(encoding="utf-8").splitlines():
        if line[:1].isalnum():
            inside = line.split("==", 1)[0].lower() == package.lower()
        if inside and not line.lstrip().startswith("#"):
            picked.append(line)
    if not picked:
        raise SystemExit(f"{lock.name} has no pin of {package}")
    return "\n".join(picked)


def _pins(lock: Path):
    for line in lock.read_text(encoding="utf-8").splitlines():
        if line[:1].isalnum() and "==" in line:
            yield line.split(" ", 1)[0]


if __name__ == "__main__":
    sys.exit(main())
