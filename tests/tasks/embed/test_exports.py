"""The export cache is pruned of exports whose model is gone (a retrain left ~90 MB each)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tasks.embed.backends.exports import prune_exports


def test_prune_keeps_exports_of_models_that_exist_and_drops_the_rest(tmp_path):
    root, kept_model = tmp_path / "exports", tmp_path / "models" / "kept"
    kept_model.mkdir(parents=True)

    def export(name: str, source: str) -> None:
        (root / name).mkdir(parents=True)
        (root / name / "meta.json").write_text(json.dumps({"source": source}))

    export("aaa-openvino", str(kept_model))
    export("bbb-openvino", str(tmp_path / "models" / "gc-removed-this-one"))
    (root / "ccc-onnx").mkdir()  # no meta.json: half an export from before staging existed
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    (root / f".ddd-onnx.{dead}").mkdir()  # the staging folder of a build that died
    (root / f".eee-onnx.{os.getpid()}").mkdir()  # a build running now (us)

    removed = prune_exports(root)
    assert sorted(removed) == sorted(["bbb-openvino", "ccc-onnx", f".ddd-onnx.{dead}"])
    assert sorted(p.name for p in root.iterdir() if p.is_dir()) == [
        f".eee-onnx.{os.getpid()}", "aaa-openvino"]
    assert prune_exports(tmp_path / "no-cache-yet") == []
