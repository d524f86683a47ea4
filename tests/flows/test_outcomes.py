"""Runs tell their outcome where people look: final state names and messages, the `runs`
table, the version's map and each drift check's place on it.

Found as a new operator: a monitor that found drift and a retrain the gate rejected both showed
as a green "Completed", and flow-run logs held nothing but "Finished in state Completed()".
"""

from __future__ import annotations

import pytest

from tests.conftest import hash_config, word_order_twins, write_jsonl
from tests.flows.test_monitor_retrain import cooking_notes
from tests.flows.test_versions import text
from warehouse.store import Warehouse

pytestmark = pytest.mark.slow


def test_ingest_states_runs_and_map(prefect_harness, tmp_path):
    from flows.ingest import ingest_corpus

    config = hash_config(tmp_path / "wh")
    corpus = write_jsonl(tmp_path / "a.jsonl", [{"_id": f"d{i}", "title": f"Doc {i}",
                                                 "text": text(i)} for i in range(60)])
    state = ingest_corpus(str(corpus), config, return_state=True)
    assert (state.type.value, state.name) == ("COMPLETED", "Published")
    assert state.message == "published v1: 60 documents, 60 chunks, 60 embedded"
    assert state.result().version_id == 1  # the direct call still gives the summary

    again = ingest_corpus(str(corpus), config, return_state=True)
    assert again.name == "Unchanged" and "version 1 already holds" in again.message

    # Two texts with the same words in another order get the same hash "embedding": a
    # version whose vectors are mostly identical is broken, and the gate says so by name.
    strict = hash_config(tmp_path / "wh", **{"gate.max_duplicate_share": 0.1})
    rejected = ingest_corpus(str(write_jsonl(tmp_path / "b.jsonl", word_order_twins())), strict,
                             return_state=True)
    assert rejected.name == "Rejected"
    assert rejected.message.startswith("rejected v2: ") and "identical vectors" in rejected.message

    wh = Warehouse(tmp_path / "wh")
    con = wh.connect()
    runs = con.execute("SELECT flow, status, version_id, message FROM runs "
                       "ORDER BY started_at").fetchall()
    assert [(r[0], r[1], r[2]) for r in runs] == [
        ("ingest", "published", 1), ("ingest", "unchanged", 1), ("ingest", "rejected", 2)]
    assert runs[2][3] == rejected.message
    projection = wh.projection(1)
    assert projection.num_rows == 60 and set(projection["method"].to_pylist()) == {"pca"}
    assert set(projection["doc_id"].to_pylist()) == {f"d{i}" for i in range(60)}
    assert wh.version(1).summary["flow_run_id"] == str(state.state_details.flow_run_id)


def test_monitor_states_thresholds_and_the_check_on_the_map(prefect_harness, tmp_path):
    from flows.ingest import ingest_corpus
    from flows.monitor import monitor_drift

    config = hash_config(tmp_path / "wh")
    corpus = write_jsonl(tmp_path / "a.jsonl", [{"_id": f"d{i}", "text": text(i)}
                                                for i in range(80)])
    ingest_corpus(str(corpus), config)
    same = write_jsonl(tmp_path / "same.jsonl", [{"_id": f"s{i}", "text": text(500 + i)}
                                                 for i in range(60)])
    drifted = write_jsonl(tmp_path / "drifted.jsonl", cooking_notes(60))

    calm = monitor_drift(config, str(same), return_state=True)
    assert calm.name == "No drift" and calm.message.startswith("no drift: MMD p=")
    state = monitor_drift(config, str(drifted), return_state=True)
    assert state.name == "Drift" and state.message.startswith("drift: MMD p=")
    report = state.result()

    wh = Warehouse(tmp_path / "wh")
    con = wh.connect()
    rows = dict(con.execute("SELECT metric, threshold FROM drift_metrics WHERE check_id = ?",
                            [report.check_id]).fetchall())
    assert rows["mmd_p_value"] == 0.01 and rows["classifier_auc"] == 0.55
    assert rows["centroid_cosine_distance"] is None
    placed = wh.projection(1, report.check_id)
    assert placed.num_rows == report.n_current
    assert set(placed["doc_id"].to_pylist()) <= {f"recipe-{i}" for i in range(60)}
    runs = con.execute("SELECT status FROM runs WHERE flow = 'monitor' ORDER BY started_at")
    assert [r[0] for r in runs.fetchall()] == ["no drift", "drift"]


def test_a_served_monitor_before_the_first_ingest_is_skipped_not_failed(prefect_harness,
                                                                        tmp_path):
    """The soak's first served monitor ran before the first ingest had made a version and
    ended Failed ("no warehouse at …"); served checks on a fresh deployment now wait quietly.
    A direct check (the CLI's) still fails: a person asked for it."""
    from flows.monitor import monitor_drift
    from warehouse.errors import WarehouseError

    config = hash_config(tmp_path / "wh")
    batch = str(write_jsonl(tmp_path / "b.jsonl", cooking_notes(10)))
    state = monitor_drift(config, batch, skip_before_first_version=True, return_state=True)
    assert state.name == "Skipped" and state.is_completed()
    assert state.message == (f"skipped: {tmp_path / 'wh'} has no active version yet (the "
                             "first ingest makes one)")
    with pytest.raises(WarehouseError, match="no warehouse at"):
        monitor_drift(config, batch)
