"""How a flow run ends: a completed state whose name and message say what it did.

In the Prefect UI a run that published version 7, one the gate rejected and one that found
drift all look "Completed" unless the state says more. These end states do: names `Published`,
`Unchanged`, `Rejected`, `Drift`, `No drift`, `Evaluated`; messages such as `published v7`,
`rejected v8: ndcg@10 -0.012 beyond 0.005`, `drift: MMD p=0.002, AUC 0.97`. The direct call of a
flow still returns its summary object; `trigger --wait` reads the state's name and message.
"""

from __future__ import annotations

from typing import Any, TypeVar

from prefect.states import Completed

from flows.summary import IngestSummary
from tasks.monitor.drift import DriftReport

T = TypeVar("T")
NOT_OK = ("Rejected", "Drift")  # completed, but the outcome a script should not ignore


def finish(value: T, name: str, message: str) -> T:
    """End the flow run in a completed state named `name`, returning `value` to the caller.

    Typed as returning `value` because that is what calling the flow gives back.
    """
    state: Any = Completed(data=value, name=name, message=message)
    return state  # type: ignore[no-any-return]


def ingest_outcome(summary: IngestSummary) -> tuple[str, str]:
    if summary.status == "unchanged":
        return "Unchanged", (f"unchanged: version {summary.version_id} already holds this "
                             "corpus" if summary.version_id else "unchanged")
    if summary.status == "rejected":
        return "Rejected", f"rejected v{summary.version_id}: {summary.gate_headline}"
    return "Published", (f"published v{summary.version_id}: {summary.kept} documents, "
                         f"{summary.chunks} chunks, {summary.vectors_embedded} embedded")


def drift_outcome(report: DriftReport) -> tuple[str, str]:
    if report.drifted:
        return "Drift", report.headline()
    if report.alarm:
        return "Alarm", report.headline() + " (not yet the required number of alarms)"
    return "No drift", report.headline()
