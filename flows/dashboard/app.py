"""The dashboard web app: Starlette routes over the page builders, read-only.

Input: the config (the warehouse and its catalog, gate tolerances) and optionally how to find
the Prefect UI. Output: an ASGI app serving each page as HTML (`/`, `/versions`,
`/versions/{id}`, `/versions/{id}/card`, `/quality`, `/drift`, `/map`, `/search`) and as JSON
with the same numbers (`/api/overview`, `/api/versions`, …), `/metrics` for Prometheus, and
static files (our CSS and JS, and plotly.min.js from the installed `plotly` package: no CDN).

Every request reads the lake through one short read-only attachment of the catalog; nothing is
cached but the searchers. Pages embed chart data as JSON (`|tojson`) and scripts come only from
`/static`, which the Content-Security-Policy enforces.
"""

from __future__ import annotations

import math
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import plotly
from markupsafe import Markup
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from flows.config import EmbedpipeConfig, resolve_secret
from flows.dashboard import charts, maps, metrics, overview, trends, versions
from flows.dashboard.context import Dashboard, now
from flows.dashboard.fmt import environment
from flows.dashboard.links import PrefectLinks
from flows.dashboard.searching import Searchers
from warehouse.errors import VersionNotFound, WarehouseError
from warehouse.history import PooledWarehouse
from warehouse.query_log import QueryLog

STATIC = Path(__file__).parent / "static"
PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
MAX_QUERY_CHARS = 1000
HEADERS = [(k.encode(), v.encode()) for k, v in {
    "content-security-policy": "default-src 'self'; script-src 'self'; "
    "style-src 'self' 'unsafe-inline'; img-src 'self' data:; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "x-content-type-options": "nosniff", "referrer-policy": "same-origin"}.items()]
NAV = [("overview", "/", "Overview"), ("versions", "/versions", "Versions"),
       ("quality", "/quality", "Quality"), ("drift", "/drift", "Drift"), ("map", "/map", "Map"),
       ("search", "/search", "Search")]
TITLES = {name: label for name, _, label in NAV}


class BadRequest(ValueError):
    """A query parameter with a value the page cannot use."""


@dataclass(frozen=True)
class Page:
    """One page: its HTML template, how to read its data, and its charts (if any)."""

    name: str
    template: str
    read: Callable[[Dashboard, Request], dict[str, Any]]
    charts: Callable[[dict[str, Any]], dict[str, Any]] | None = None


def create_app(config: EmbedpipeConfig, links: PrefectLinks | None = None) -> Starlette:
    """The dashboard app over `config`'s warehouse (opened read-only, never locked; searches
    are appended to its query log unless `search.log_queries` is false)."""
    wh = PooledWarehouse(config.warehouse.path, resolve_secret(config.warehouse.catalog))
    log = QueryLog(wh, config.search, "dashboard", background=True)
    dash = Dashboard(wh, config, links or PrefectLinks(), Searchers(wh, log))
    templates = Jinja2Templates(env=environment())
    if wh.exists():
        wh.pool.warm()

    def render(request: Request, template: str, current: str, page: dict[str, Any],
               figures: dict[str, Any], status_code: int = 200) -> Response:
        """`template` filled with the page's data and what base.html needs around it."""
        return templates.TemplateResponse(request, template, {
            "page": page, "charts": figures, "nav": NAV, "current": current,
            "title": TITLES.get(current, ""), "warehouse": wh.where, "now": now()},
            status_code=status_code)

    def routes_of(path: str, api: str, page: Page) -> list[Route]:
        def html(request: Request) -> Response:
            with wh.reading():
                data = page.read(dash, request)
            figures = page.charts(data) if page.charts else {}
            data.pop("_table", None)
            data["html"] = Markup(data.pop("_html", ""))  # rendered with raw HTML off
            return render(request, page.template, page.name, data, figures)

        def api_json(request: Request) -> Response:
            with wh.reading():
                data = page.read(dash, request)
            table = data.pop("_table", None)
            data.pop("_html", None)
            if table is not None:
                data["samples"] = maps.map_points_json(table)
            return JSONResponse(jsonable(data), status_code=400 if data.get("error") else 200)
        return [Route(path, html, name=page.name), Route(api, api_json, name=f"api-{page.name}")]

    def scrape(request: Request) -> Response:
        return Response(metrics.render(wh), media_type=CONTENT_TYPE_LATEST)

    def plotly_js(request: Request) -> Response:
        return FileResponse(PLOTLY_JS, media_type="text/javascript",
                            headers={"cache-control": "public, max-age=86400"})

    routes = [*routes_of("/", "/api/overview", OVERVIEW),
              *routes_of("/versions", "/api/versions", VERSIONS),
              *routes_of("/versions/{version_id:int}", "/api/versions/{version_id:int}", VERSION),
              *routes_of("/versions/{version_id:int}/card", "/api/versions/{version_id:int}/card",
                         CARD),
              *routes_of("/quality", "/api/quality", QUALITY),
              *routes_of("/drift", "/api/drift", DRIFT),
              *routes_of("/map", "/api/map", MAP),
              *routes_of("/search", "/api/search", SEARCH),
              Route("/metrics", scrape), Route("/static/plotly.min.js", plotly_js),
              Mount("/static", StaticFiles(directory=STATIC), name="static")]

    def failed(status: int) -> Callable[[Request, Exception], Response]:
        def handle(request: Request, exc: Exception) -> Response:
            message = " ".join(str(exc).split())
            if request.url.path.startswith("/api/"):
                return JSONResponse({"error": message}, status_code=status)
            return render(request, "error.html", "", {"status": status, "error": message}, {},
                          status)
        return handle

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # The active version's model loads beside the server, not in somebody's first search.
        stop = threading.Event()
        threading.Thread(target=dash.searchers.keep_warm, args=(stop,), daemon=True,
                         name="embedpipe-warm").start()
        try:
            yield
        finally:
            stop.set()
            log.close()  # the searches queued since the last append

    app = Starlette(routes=routes, middleware=[Middleware(SecurityHeaders)], lifespan=lifespan,
                    exception_handlers={BadRequest: failed(400), VersionNotFound: failed(404),
                                        WarehouseError: failed(503)})
    app.state.dashboard = dash
    return app


class SecurityHeaders:
    """Adds the Content-Security-Policy and friends to every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *HEADERS]
            await send(message)

        # Only HTTP responses carry headers; lifespan and websocket messages pass untouched.
        await self.app(scope, receive, send_with_headers if scope["type"] == "http" else send)


def int_param(request: Request, name: str, default: int | None, low: int = 0,
              high: int = 2**62) -> int | None:
    """Query parameter `name` as an int in [low, high] ("" or absent: `default`).

    Raises:
        BadRequest: not a whole number, or out of range.
    """
    raw = request.query_params.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"{name}={raw[:40]!r} is not a whole number") from None
    if not low <= value <= high:
        raise BadRequest(f"{name}={value} is out of range ({low} to {high})")
    return value


def _map(dash: Dashboard, request: Request) -> dict[str, Any]:
    data, table = maps.map_page(dash, int_param(request, "version", None, 1))
    return {**data, "_table": table}


def _search(dash: Dashboard, request: Request) -> dict[str, Any]:
    query = request.query_params.get("q")
    if query is not None and len(query) > MAX_QUERY_CHARS:
        raise BadRequest(f"the query is {len(query)} characters long; at most "
                         f"{MAX_QUERY_CHARS} are searched")
    return maps.search_page(dash, query, int_param(request, "version", None, 1),
                            int_param(request, "k", 10, 1, 100) or 10)


def _map_charts(data: dict[str, Any]) -> dict[str, Any]:
    if not data["points"]:
        return {}
    drawn = [c for c in data["checks"] if c["drawn"]]
    return {"map": charts.map_figure(data["_table"], drawn)}


OVERVIEW = Page("overview", "overview.html", lambda d, r: overview.overview(d))
VERSIONS = Page("versions", "versions.html", lambda d, r: versions.versions_page(d))
VERSION = Page("versions", "version.html",
               lambda d, r: versions.version_page(d, r.path_params["version_id"]),
               lambda data: {"stages": charts.stages_figure(data["stage_seconds"])}
               if data["stage_seconds"] else {})
CARD = Page("versions", "card.html",
            lambda d, r: versions.card_page(d, r.path_params["version_id"]))
QUALITY = Page("quality", "quality.html", lambda d, r: trends.quality_page(d),
               lambda data: {f"q{i}": charts.quality_figure(m, data["active_version"])
                             for i, m in enumerate(data["metrics"])})
DRIFT = Page("drift", "drift.html", lambda d, r: trends.drift_page(d),
             lambda data: {f"d{i}": charts.drift_figure(s)
                           for i, s in enumerate(data["statistics"])})
MAP = Page("map", "map.html", _map, _map_charts)
SEARCH = Page("search", "search.html", _search)


def jsonable(value: Any) -> Any:
    """`value` with times as ISO-8601 UTC strings and NaN/inf as null (JSON has neither)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat() + ("Z" if value.tzinfo is None else "")
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
