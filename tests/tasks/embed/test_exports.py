"""The export cache is pruned of exports whose model is gone (a retrain left ~90 MB each)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

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


def test_an_openvino_export_sends_nothing_off_the_machine(tmp_path):
    """The soak found served runs whose processes never exited: OpenVINO's converter had
    forked a child to send telemetry to Google Analytics, which hung without a network.
    Reproduced in a fresh process each time, with the send recorded instead of made (CI
    unset: CI=true mutes it; a home without a consent file)."""
    pytest.importorskip("openvino")
    code = ("import sys, time, torch, openvino as ov\n"
            "from openvino_telemetry.backend import backend_ga4\n"
            "backend_ga4.GA4Backend.send = lambda self, *a, **k: print('SENT', flush=True)\n"
            "if sys.argv[1] == 'muted':\n"
            "    from tasks.embed.backends.exports import no_openvino_telemetry\n"
            "    no_openvino_telemetry()\n"
            "ov.convert_model(torch.nn.Linear(4, 2), example_input=torch.zeros(1, 4))\n"
            "time.sleep(1)\n")
    env = {k: v for k, v in os.environ.items() if k != "CI"} | {"HOME": str(tmp_path)}

    def sent(mode: str) -> bool:
        done = subprocess.run([sys.executable, "-c", code, mode], env=env, capture_output=True,
                              text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        return "SENT" in done.stdout

    assert sent("as shipped"), "the converter no longer reports: nothing left to guard"
    assert not sent("muted")
