"""Shared fixtures: the real model once per session, a deterministic test model, tiny corpora."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from flows.config import EmbedpipeConfig

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

EMBEDPIPE = str(Path(sys.executable).parent / "embedpipe")
DATA_DIR = Path(os.environ.get("EMBEDPIPE_DATA_DIR",
                               Path(__file__).resolve().parents[1].parent / "shared" / "data"))

# Ten short documents on unrelated topics, so a query has one clearly right answer.
TOPIC_DOCS = [
    ("photosynthesis", "Photosynthesis", "Plants convert sunlight, water and carbon dioxide into "
     "glucose and oxygen in their chloroplasts."),
    ("volcano", "Volcanoes", "A volcano erupts when molten rock called magma rises through the "
     "crust and escapes as lava, ash and gas."),
    ("espresso", "Espresso", "Espresso is coffee brewed by forcing hot water through finely "
     "ground beans under high pressure."),
    ("chess", "Chess openings", "The Sicilian Defence is a chess opening in which Black answers "
     "1.e4 with c5 to fight for the centre."),
    ("tides", "Ocean tides", "Tides are the rise and fall of sea levels caused by the gravity of "
     "the Moon and the Sun acting on the oceans."),
    ("bicycle", "Bicycle maintenance", "Keep a bicycle chain clean and lubricated, and check the "
     "tyre pressure and brake pads every few weeks."),
    ("vaccine", "Vaccines", "A vaccine trains the immune system to recognise a pathogen by "
     "exposing it to a harmless antigen."),
    ("sourdough", "Sourdough bread", "Sourdough bread rises thanks to a starter of wild yeast and "
     "lactic acid bacteria fed with flour and water."),
    ("jupiter", "Jupiter", "Jupiter is the largest planet of the solar system, a gas giant with a "
     "Great Red Spot storm larger than Earth."),
    ("python-gil", "The GIL", "CPython's global interpreter lock lets only one thread execute "
     "Python bytecode at a time."),
]


@pytest.fixture(scope="session")
def real_embedder():
    """all-MiniLM-L6-v2 from the bundled package (torch), loaded once for the whole session."""
    from tasks.embed.base import EmbedConfig
    from tasks.embed.embedding import load_embedder

    return load_embedder(EmbedConfig(backend="torch"))


@pytest.fixture(scope="session")
def tokenizer(real_embedder):
    return real_embedder.tokenizer


@pytest.fixture()
def hash_embedder():
    from tasks.embed.hashing import HashEmbedder

    return HashEmbedder(dimension=32)


def run_embedpipe(args: list[str], prefect_api: str, timeout: float = 300
                  ) -> subprocess.CompletedProcess[str]:
    """`embedpipe ARGS` in a subprocess on the test Prefect API with the hash embedder."""
    env = {**os.environ, "PREFECT_API_URL": prefect_api, "EMBEDPIPE_EMBED__MODEL": "hash"}
    return subprocess.run([EMBEDPIPE, *args], capture_output=True, text=True, env=env,
                          timeout=timeout)


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    """`python -c CODE` in a fresh interpreter, so nothing this test process imported counts."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)


def needs_debian_program(program: Path, package: str) -> list[pytest.MarkDecorator]:
    """Marks of a slow test module that drives a Debian-packaged program: skipped without it."""
    return [pytest.mark.slow, pytest.mark.skipif(
        not program.exists(), reason=f"Debian's {package} is not installed ({program}): "
        f"`make test` installs it (apt-get install {package})")]


def hash_config(path: Path, **overrides: Any) -> EmbedpipeConfig:
    """A config with the warehouse at `path`, the hash embedder and few drift permutations."""
    from flows.config import load_config

    return load_config(overrides={"warehouse.path": path, "embed.model": "hash",
                                  "drift.permutations": 100, **overrides}, environ={})


def word_order_twins() -> list[dict[str, str]]:
    """Four documents, two pairs of the same words in another order: the hash embedder gives
    each pair one vector, so a version of them fails the gate's duplicate share."""
    twins = [{"_id": f"t{i}", "text": f"{w} alpha beta gamma delta epsilon zeta eta theta"}
             for i, w in enumerate(["iota", "kappa"])]
    twins += [{"_id": f"u{i}", "text": f"alpha beta gamma delta epsilon zeta eta theta {w}"}
              for i, w in enumerate(["iota", "kappa"])]
    return twins


def write_jsonl(path: Path, records: list) -> Path:
    with path.open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(record if isinstance(record, str) else json.dumps(record))
            handle.write("\n")
    return path


@pytest.fixture()
def topic_corpus(tmp_path: Path) -> Path:
    """TOPIC_DOCS as BEIR JSONL, plus one exact duplicate, one empty text and one broken line."""
    records: list = [{"_id": i, "title": t, "text": x} for i, t, x in TOPIC_DOCS]
    records.append({"_id": "espresso-copy", "title": "Espresso", "text": TOPIC_DOCS[2][2]})
    records.append({"_id": "blank", "title": "", "text": "   "})
    records.append('{"_id": "broken", "text": ')  # line 13: not JSON
    return write_jsonl(tmp_path / "corpus.jsonl", records)


@pytest.fixture(scope="session")
def prefect_api(tmp_path_factory):
    """A real Prefect server for tests that run `embedpipe` in subprocesses (URL of its API)."""
    from tests.servers import prefect_server

    with prefect_server(tmp_path_factory.mktemp("prefect-home")) as url:
        yield url
