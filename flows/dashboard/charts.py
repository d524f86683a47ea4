"""Plotly figures as plain dicts (data + layout), drawn in the browser by plotly.js.

Input: the page dicts of `trends`, `versions` and `maps` (and the map's Arrow rows). Output:
JSON-ready figure dicts; the page embeds each with `|tojson` in a `<script type=
"application/json">` block and `static/dashboard.js` calls `Plotly.newPlot`. Only SVG traces
(`scatter`, `bar`): headless Chromium without a GPU draws no WebGL. Plotly renders a little
HTML in labels and hover text, so every string from data goes through `esc` first.
"""

from __future__ import annotations

import html
import re
from pathlib import PurePath
from typing import Any

import pyarrow as pa

Figure = dict[str, Any]
GREEN, AMBER, RED, GREY, BLUE, INK = "#2b8a3e", "#e8a100", "#c92a2a", "#adb5bd", "#1c7ed6", \
    "#212529"
STATUS_COLOURS = {"active": GREEN, "candidate": AMBER, "rejected": RED, "retired": GREY,
                  "expired": GREY}
CLUSTER_COLOURS = ["#4c6ef5", "#12b886", "#fab005", "#be4bdb", "#15aabf", "#fd7e14", "#82c91e",
                   "#f06595", "#7950f2", "#228be6", "#40c057", "#e64980"]
CHECK_COLOURS = ["#000000", "#c92a2a", "#5f3dc4", "#0b7285", "#d9480f"]
CHECK_SYMBOLS = ["x", "diamond", "triangle-up", "square", "star"]
_WRAP = re.compile(r"(.{1,70})(?:\s+|$)")


def esc(text: Any) -> str:
    """`text` safe for Plotly's label markup: &, <, >, quotes as entities.

    >>> esc('<b onclick="x">')
    '&lt;b onclick=&#34;x&#34;&gt;'
    """
    return html.escape("" if text is None else str(text), quote=False).replace(
        '"', "&#34;").replace("'", "&#39;")


def hover(doc_id: Any, title: Any, snippet: Any) -> str:
    """Hover text of a map point: title, doc id and snippet (escaped, wrapped at ~70 chars)."""
    body = _WRAP.sub(r"\1<br>", esc(snippet)).removesuffix("<br>")
    heading = f"<b>{esc(title)}</b><br>" if title and title != doc_id else ""
    return f"{heading}{esc(doc_id)}<br>{body}"


def layout(title: str, height: int = 260, **extra: Any) -> dict[str, Any]:
    axis = {"gridcolor": "#edf0f2", "zeroline": False, "automargin": True}
    return {"title": {"text": esc(title), "x": 0.01, "xanchor": "left", "font": {"size": 14}},
            "height": height, "margin": {"l": 56, "r": 16, "t": 40, "b": 36},
            "paper_bgcolor": "#ffffff", "plot_bgcolor": "#ffffff", "showlegend": False,
            "font": {"family": "system-ui, -apple-system, 'Segoe UI', sans-serif", "size": 12,
                     "color": INK},
            "hovermode": "closest", "xaxis": dict(axis), "yaxis": dict(axis), **extra}


def quality_figure(m: dict[str, Any], active: int | None) -> Figure:
    """One metric across versions: points by status, the active one starred, the gate band."""
    xs = [f"v{p['version_id']}" for p in m["points"]]
    hovers = [f"v{p['version_id']} ({esc(p['status'])})<br>{p['value']:.6g}"
              for p in m["points"]]
    data: list[dict[str, Any]] = [{
        "type": "scatter", "mode": "lines+markers", "x": xs, "y": [p["value"] for p in m["points"]],
        "line": {"color": GREY, "width": 1.5}, "hovertext": hovers, "hoverinfo": "text",
        "marker": {"size": 9, "color": [STATUS_COLOURS.get(p["status"], GREY)
                                        for p in m["points"]]}}]
    if m["active_value"] is not None and active is not None:
        data.append({"type": "scatter", "mode": "markers", "x": [f"v{active}"],
                     "y": [m["active_value"]], "hoverinfo": "skip",
                     "marker": {"size": 17, "symbol": "star", "color": GREEN,
                                "line": {"color": "#ffffff", "width": 1}}})
    shapes, notes = [], []
    if m["band"] is not None:
        low, high = m["band"]
        edge = low if m["greater_is_better"] else high
        shapes = [{"type": "rect", "xref": "paper", "x0": 0, "x1": 1, "y0": low, "y1": high,
                   "fillcolor": "rgba(43,138,62,0.13)", "line": {"width": 0}},
                  {"type": "line", "xref": "paper", "x0": 0, "x1": 1, "y0": edge, "y1": edge,
                   "line": {"color": GREEN, "width": 1, "dash": "dash"}}]
        sign = "−" if m["greater_is_better"] else "+"
        text = f"gate tolerance {sign}{m['tolerance']:g}" if m["tolerance"] else \
            "gate: no regression allowed"
        notes = [{"xref": "paper", "x": 1, "y": edge, "xanchor": "right",
                  "yanchor": "top" if m["greater_is_better"] else "bottom", "showarrow": False,
                  "text": text,
                  "font": {"size": 10, "color": GREEN}}]
    title = f"{m['metric']} · {m['evaluator']}"
    return {"data": data, "layout": layout(title, shapes=shapes, annotations=notes,
                                           xaxis={"type": "category", "gridcolor": "#edf0f2"})}


def drift_figure(stat: dict[str, Any]) -> Figure:
    """One statistic over time: alarms red, drift decisions as diamonds, the threshold line."""
    points = stat["points"]
    hovers = [f"{p['checked_at']:%Y-%m-%d %H:%M} · check {esc(p['check_id'])}<br>"
              f"{p['value']:.4g}" + (" · drift" if p["drifted"] else " · alarm" if p["alarm"]
                                     else "") for p in points]
    values = [p["value"] for p in points]
    data = [{"type": "scatter", "mode": "lines+markers",
             "x": [p["checked_at"].isoformat() for p in points], "y": values,
             "hovertext": hovers, "hoverinfo": "text", "line": {"color": BLUE, "width": 1.5},
             "marker": {"size": [11 if p["alarm"] else 7 for p in points],
                        "color": [RED if p["alarm"] else BLUE for p in points],
                        "symbol": ["diamond" if p["drifted"] else "circle" for p in points]}}]
    shapes, notes = [], []
    if stat["threshold"] is not None:
        t = stat["threshold"]
        shapes = [{"type": "line", "xref": "paper", "x0": 0, "x1": 1, "y0": t, "y1": t,
                   "line": {"color": RED, "width": 1.5, "dash": "dash"}}]
        side = "below" if stat["alarms_below"] else "above"
        notes = [{"xref": "paper", "x": 1, "y": t, "xanchor": "right", "yanchor": "bottom",
                  "showarrow": False, "text": f"threshold {t:g} (alarm {side})",
                  "font": {"size": 10, "color": RED}}]
    log = stat["metric"].endswith("p_value") and all(v is not None and v > 0 for v in values)
    return {"data": data, "layout": layout(stat["metric"], shapes=shapes, annotations=notes,
                                           yaxis={"type": "log" if log else "linear",
                                                  "exponentformat": "power",
                                                  "gridcolor": "#edf0f2", "automargin": True})}


def stages_figure(stage_seconds: dict[str, float]) -> Figure:
    """Seconds per stage of the run that made a version, as horizontal bars."""
    stages = list(stage_seconds)
    return {"data": [{"type": "bar", "orientation": "h", "y": [esc(s) for s in stages],
                      "x": [stage_seconds[s] for s in stages], "marker": {"color": BLUE},
                      "text": [f"{stage_seconds[s]:.2f} s" for s in stages],
                      "textposition": "auto", "hoverinfo": "skip"}],
            "layout": layout("", height=40 + 24 * max(len(stages), 3),
                             margin={"l": 8, "r": 16, "t": 8, "b": 28},
                             yaxis={"autorange": "reversed", "automargin": True})}


def map_figure(table: pa.Table, checks: list[dict[str, Any]]) -> Figure:
    """The version's sample by cluster, each drawn check's sample over it in its own marker."""
    data: list[dict[str, Any]] = []
    if table.num_rows == 0:
        return {"data": data, "layout": layout("", height=620)}
    cols = {name: table[name].to_pylist() for name in ("check_id", "doc_id", "title",
                                                       "snippet", "x", "y", "cluster")}
    groups: dict[tuple[str | None, int], list[int]] = {}
    for i, (check, cluster) in enumerate(zip(cols["check_id"], cols["cluster"], strict=True)):
        groups.setdefault((check, cluster if check is None else 0), []).append(i)
    order = {c["check_id"]: n for n, c in enumerate(checks)}
    for (check, cluster), rows in sorted(groups.items(),
                                         key=lambda g: (g[0][0] is not None,
                                                        order.get(g[0][0], 0), g[0][1])):
        trace: dict[str, Any] = {"type": "scatter", "mode": "markers",
                                 "x": [cols["x"][i] for i in rows],
                                 "y": [cols["y"][i] for i in rows], "hoverinfo": "text",
                                 "hovertext": [hover(cols["doc_id"][i], cols["title"][i],
                                                     cols["snippet"][i]) for i in rows]}
        if check is None:
            trace.update(name=f"cluster {cluster}", marker={
                "size": 6, "opacity": 0.7,
                "color": CLUSTER_COLOURS[cluster % len(CLUSTER_COLOURS)]})
        else:
            n = order.get(check, 0)
            c = checks[n] if n < len(checks) else {}
            when = f" · {c['checked_at']:%Y-%m-%d %H:%M}" if c.get("checked_at") else ""
            source = PurePath(str(c.get("source") or "")).name
            trace.update(name=esc(f"check {check} · {source}{when}"), marker={
                "size": 8, "symbol": CHECK_SYMBOLS[n % len(CHECK_SYMBOLS)],
                "color": CHECK_COLOURS[n % len(CHECK_COLOURS)], "line": {"width": 1}})
        data.append(trace)
    axis = {"showticklabels": False, "showgrid": False, "zeroline": False, "title": ""}
    return {"data": data, "layout": layout(
        "", height=620, showlegend=True, xaxis=axis, yaxis=axis,
        legend={"itemsizing": "constant", "font": {"size": 11}, "orientation": "h",
                "x": 0, "y": 1, "yanchor": "bottom"},
        margin={"l": 10, "r": 10, "t": 40, "b": 10})}
