"""A card for every version: what it is, where it came from, how good it is, what it does badly.

Input: the facts of a version (`gather` reads them from the warehouse: its row, metrics with
those of its parent and of the active version, its run summary, the drift checks since, and a
few figures computed from its data). Output: Markdown (`render`, pure). The ingest writes it to
`cards/<version>.md` in the warehouse and publishes it as a Prefect artifact; `embedpipe card V`
prints it fresh (drift checks since then included); the dashboard shows the same text.

Known limitations are derived from the data, not written by hand: documents cut into many
chunks (long inputs lose context), the share quarantined, the writing systems seen (the model is
English), the index's measured recall, and evaluators that could not run, with why.
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Protocol

from warehouse.store import Version

MANY_CHUNKS = 4  # a document cut into this many chunks or more is "long" for the card
_WHY_NOT = {
    "retrieval": "retrieval (nDCG@10): no labelled query set; set evaluate.beir",
    "sts": "similarity (Spearman): no sentence pairs; set evaluate.sts",
    "probe": "classification probe: no labelled texts; set evaluate.labels",
}


@dataclass(frozen=True)
class CardFacts:
    version: Version
    metrics: list[dict[str, Any]]
    parent_metrics: dict[tuple[str, str], float]
    active: Version | None
    active_metrics: dict[tuple[str, str], float]
    drift_checks: list[dict[str, Any]] = field(default_factory=list)
    documents_with_many_chunks: float = 0.0  # share
    scripts: dict[str, float] = field(default_factory=dict)  # writing system -> share of chars
    # The retrain that made this version (its run summary), when one did.
    retrain: dict[str, Any] = field(default_factory=dict)


class CardSource(Protocol):
    """What a card reads (warehouse.store provides it): the stage itself never opens storage."""

    def metrics(self, version_id: int) -> list[dict[str, Any]]: ...
    def active_or_none(self) -> Version | None: ...
    def drift_checks_since(self, since: Any) -> list[dict[str, Any]]: ...
    def chunk_spread(self, version: Version, many: int) -> float: ...
    def text_sample(self, version: Version, size: int) -> list[str]: ...
    def runs(self, flow: str, limit: int = 10) -> list[dict[str, Any]]: ...


def gather(warehouse: CardSource, version: Version) -> CardFacts:
    """The facts of `version`'s card, read from the warehouse."""
    def by_key(version_id: int | None) -> dict[tuple[str, str], float]:
        if version_id is None:
            return {}
        return {(r["evaluator"], r["metric"]): float(r["value"])
                for r in warehouse.metrics(version_id)}

    active = warehouse.active_or_none()
    expired = version.status == "expired"
    return CardFacts(
        version, warehouse.metrics(version.version_id), by_key(version.parent_id), active,
        by_key(active.version_id if active else None),
        warehouse.drift_checks_since(version.created_at),
        0.0 if expired else warehouse.chunk_spread(version, MANY_CHUNKS),
        {} if expired else scripts(warehouse.text_sample(version, 300)),
        next((r["summary"] for r in warehouse.runs("retrain", 200)
              if isinstance(r.get("summary"), dict)
              and r["summary"].get("candidate_version") == version.version_id), {}))


def scripts(texts: list[str]) -> dict[str, float]:
    """Share of letters per writing system (the first word of each letter's Unicode name).

    >>> scripts(["abc", "日本"])
    {'LATIN': 0.6, 'CJK': 0.4}
    """
    counts: Counter[str] = Counter()
    for text in texts:
        for char in text:
            if char.isalpha():
                name = unicodedata.name(char, "OTHER UNKNOWN").split()[0]
                counts[name if name in ("LATIN", "CJK", "CYRILLIC", "GREEK", "ARABIC",
                                        "HEBREW", "DEVANAGARI", "HANGUL", "HIRAGANA",
                                        "KATAKANA", "THAI") else "OTHER"] += 1
    total = sum(counts.values()) or 1
    return {k: round(v / total, 4) for k, v in counts.most_common()}


def render(facts: CardFacts) -> str:
    """The card as Markdown."""
    v = facts.version
    s = v.summary or {}
    lines = [f"# Version {v.version_id} ({v.status}{', pinned' if v.pinned else ''})", "",
             f"{v.message or ''} — created {str(v.created_at)[:19]} UTC", "", "## Lineage", "",
             "| what | value |", "|---|---|"]
    lines += [f"| {k} | {_cell(val)} |" for k, val in [
        ("parent", v.parent_id or "none (first version)"), ("source", s.get("source", "-")),
        ("corpus fingerprint", v.corpus_fingerprint), ("model", v.model_name),
        ("model location", v.model_location), ("backend", v.model_backend or "torch"),
        ("model fingerprint", v.model_fingerprint), ("dimension", v.dimension),
        ("chunker", ", ".join(f"{a}={b}" for a, b in sorted(v.chunker_config.items()))),
        ("runtime", ", ".join(f"{k} {val}" for k, val in sorted(v.runtime.items()) if val)
         or "not recorded"),
        ("lake snapshot", v.lake_snapshot), ("flow run", s.get("flow_run_id") or "-")]]
    lines += ["", "## Contents", "", "| what | count |", "|---|---|"]
    lines += [f"| {k} | {_cell(val)} |" for k, val in [
        ("documents", v.n_documents), ("chunks", v.n_chunks),
        ("vectors embedded / reused", f"{v.n_embedded} / {v.n_reused}"),
        ("input records of the run", s.get("input_documents", "-")),
        ("duplicates (exact / near)", f"{s.get('exact_duplicates', 0)} / "
                                      f"{s.get('near_duplicates', 0)}"),
        ("quarantined", f"{s.get('quarantined', 0)} "
                        f"{_reasons(s.get('quarantined_by_reason') or {})}")]]
    lines += ["", "## Quality", "", "| evaluator | metric | value | Δ parent | Δ active |",
              "|---|---|---|---|---|"]
    for r in facts.metrics:
        key = (r["evaluator"], r["metric"])
        lines.append(f"| {_cell(r['evaluator'])} | {_cell(r['metric'])}"
                     f"{' *' if r['is_primary'] else ''} | {float(r['value']):.4g} | "
                     f"{_delta(r['value'], facts.parent_metrics.get(key))} | "
                     f"{_delta(r['value'], facts.active_metrics.get(key))} |")
    lines += training(facts.retrain)
    gate = v.gate or {}
    lines += ["", "## Gate", "", ("passed" if gate.get("passed") else "rejected")
              + (" (forced active)" if gate.get("forced") else "")
              + f": {_cell(gate.get('reason', 'not decided'))}" if gate else "not decided yet"]
    lines += ["", "## Drift checks since", ""]
    lines += [f"- {str(c['checked_at'])[:19]} {c['kind']} `{_cell(c['source'])}`: "
              f"{'drift' if c['drifted'] else 'alarm' if c['alarm'] else 'no drift'}"
              for c in facts.drift_checks] or ["none"]
    lines += ["", "## Known limitations", ""] + [f"- {x}" for x in limitations(facts)]
    return "\n".join(lines) + "\n"


def training(retrain: dict[str, Any]) -> list[str]:
    """The card's Training section: what a retrained version's model learned from, and how."""
    if not retrain:
        return []
    t = retrain.get("training") or {}
    lines = ["", "## Training", "", "| what | value |", "|---|---|",
             f"| strategy | {retrain.get('strategy')} of version {retrain.get('base_version')} |"]
    if t:
        kinds = ", ".join(f"{k} {n}" for k, n in (t.get("pairs_by_kind") or {}).items())
        lines += [f"| {k} | {_cell(val)} |" for k, val in [
            ("pairs", f"{t.get('pairs')}" + (f" ({kinds})" if kinds else "")),
            ("held-out documents (never trained on)", t.get("held_out_documents", "-")),
            ("held-out logged searches (never trained on)", t.get("held_out_searches", "-")),
            ("recipe", t.get("recipe", "-")),
            ("steps × batch, learning rate", f"{t.get('steps')} × {t.get('batch_size', '-')}, "
                                             f"{t.get('learning_rate', '-')}"),
            ("seconds", t.get("seconds")), ("final loss", t.get("train_loss"))]]
    if retrain.get("evaluation_set"):
        lines.append(f"| evaluation set (mined, label-free) | {_cell(retrain['evaluation_set'])} |")
    if retrain.get("query_log_set"):
        lines.append(f"| evaluation set (held-out logged searches, pseudo-labelled) | "
                     f"{_cell(retrain['query_log_set'])} |")
    return lines


def limitations(facts: CardFacts) -> list[str]:
    """What this version is known to do badly, from its own figures."""
    v, s = facts.version, facts.version.summary or {}
    found = []
    if facts.documents_with_many_chunks > 0.05:
        found.append(f"{facts.documents_with_many_chunks:.0%} of documents are cut into "
                     f"{MANY_CHUNKS} or more chunks: a question about a whole long document is "
                     "answered from one passage")
    n_input = s.get("input_documents") or 0
    if n_input and s.get("quarantined", 0) / n_input > 0.01:
        found.append(f"{s['quarantined'] / n_input:.1%} of the input was quarantined "
                     f"({_reasons(s.get('quarantined_by_reason') or {})}): "
                     "see `embedpipe sql \"SELECT * FROM quarantine\"`")
    other = {k: x for k, x in facts.scripts.items() if k != "LATIN" and x >= 0.01}
    if other:
        found.append("text in other writing systems than Latin ("
                     + ", ".join(f"{k.lower()} {x:.0%}" for k, x in other.items())
                     + f"): {v.model_name} was trained on English, its vectors of such text "
                       "are weaker")
    index = v.index_meta or {}
    if index:
        logged = (f"; {index['log_recall']} on {index.get('log_queries')} logged searches"
                  if index.get("log_recall") is not None else "")
        retuned = (f"; ef raised from {index['retuned_from']} to {index.get('ef')} on logged "
                   "searches" if index.get("retuned_from") else "")
        found.append(f"search is approximate: index recall@{index.get('recall_k', 10)} "
                     f"{index.get('recall')} (held-out {index.get('heldout_recall')}) against "
                     f"exact search, measured on {index.get('queries') or 'chunks'} queries"
                     f"{logged}{retuned}")
    present = {r["evaluator"].split(":")[0] for r in facts.metrics}
    found += [f"not measured: {why}" for name, why in _WHY_NOT.items()
              if name not in present and not (name == "retrieval" and "mined" in present)]
    return found or ["none found in its figures"]


def _delta(value: float, other: float | None) -> str:
    return "-" if other is None else f"{float(value) - other:+.4f}"


def _reasons(by_reason: dict[str, int]) -> str:
    return ", ".join(f"{n} {reason}" for reason, n in sorted(by_reason.items()))


def _cell(value: Any) -> str:
    """Data for a Markdown cell: no pipes or newlines."""
    return str(value).replace("|", "\\|").replace("\n", " ")


def card(warehouse: CardSource, version: Version) -> str:
    return render(gather(warehouse, version))
