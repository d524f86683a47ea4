"""The CLI's contract: one-line errors with exit code 2, and no Prefect where no flow runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import run_python

EMBEDPIPE = str(Path(sys.executable).parent / "embedpipe")


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([EMBEDPIPE, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120)


@pytest.mark.parametrize(("args", "message"), [
    (["ingest", "missing.jsonl"], "error: missing.jsonl: no such file or directory"),
    (["search", "anything"], "error: no warehouse at"),
    (["versions"], "error: no warehouse at"),
    (["ingest", "x.jsonl", "--batch-size", "0"], "error: invalid configuration "
                                                 "(embed.batch_size"),
])
def test_errors_are_one_line_with_exit_code_2(tmp_path, args, message):
    result = run(*args, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith(message)
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_usage_errors_exit_2_with_usage(tmp_path):
    result = run("search", cwd=tmp_path)
    assert result.returncode == 2 and "Missing argument" in result.stderr


def test_read_commands_never_import_prefect():
    code = ("import sys; from flows import cli, search, config; "
            "from flows.cli import versions, query; from warehouse import store, maintenance; "
            "print('prefect' in sys.modules, 'torch' in sys.modules)")
    result = run_python(code)
    assert result.stdout.split() == ["False", "False"]


def test_demo_corpus_is_real_stdlib_text(tmp_path):
    result = run("demo-corpus", "c.jsonl", "--limit", "50", cwd=tmp_path)
    assert result.returncode == 0
    lines = (tmp_path / "c.jsonl").read_text().splitlines()
    assert len(lines) == 50 and all('"_id"' in line for line in lines)
