"""After a promoted retrain, ingests keep the fine-tuned model (they used to undo it)."""

from __future__ import annotations

from types import SimpleNamespace as V

from tasks.embed.base import EmbedConfig
from tasks.steps.ingest import finetuned_model


def lake(tmp_path, *versions):
    return V(versions=lambda: list(versions), models_dir=lambda: tmp_path / "models")


def test_the_next_ingest_keeps_the_promoted_fine_tune(tmp_path):
    """The soak: version 10, a fine-tune the gate promoted; version 11, the scheduled ingest
    five minutes later, back on the base model with every chunk re-embedded."""
    tuned, tuned_again = str(tmp_path / "models" / "aaa"), str(tmp_path / "models" / "bbb")
    base = V(version_id=9, status="retired", model_name="all-MiniLM-L6-v2",
             model_location="all-MiniLM-L6-v2", parent_id=8)
    first = V(version_id=10, status="active", model_name=tuned, model_location=tuned,
              parent_id=9)
    config = EmbedConfig(model="all-MiniLM-L6-v2")
    assert finetuned_model(config, lake(tmp_path, base, first)) == tuned
    # a fine-tune of that fine-tune: still descended from the configured model
    second = V(version_id=11, status="active", model_name=tuned_again,
               model_location=tuned_again, parent_id=10)
    older = V(**{**vars(first), "status": "retired"})
    assert finetuned_model(config, lake(tmp_path, base, older, second)) == tuned_again
    # naming another model switches to it; an active base model is simply the config's
    assert finetuned_model(EmbedConfig(model="other-model"), lake(tmp_path, base, first)) is None
    assert finetuned_model(config, lake(tmp_path, V(**{**vars(base), "status": "active"}))) \
        is None
    assert finetuned_model(config, lake(tmp_path)) is None  # nothing yet
