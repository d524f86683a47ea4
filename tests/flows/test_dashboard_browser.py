"""The dashboard in a real browser: Debian's Chromium, headless, driven by Playwright.

Through every page of the served app (the warehouse of `test_dashboard.py`): the numbers shown
are the lake's, every chart draws its SVG, nothing logs a console error (the Content-Security-
Policy would log any blocked script), the search box finds the expected document, and a
screenshot of each page lands in `bench/results/screenshots/`. A document whose id and title
are `<script>…</script><img … onerror=…>` shows as text on the version, search and map pages
and runs nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from flows.dashboard.fmt import metric
from flows.dashboard.links import PrefectLinks
from tests.conftest import needs_debian_program
from tests.flows.test_dashboard import QUERY, XSS, Lake, dashboard_lake, served

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path(__file__).resolve().parents[2] / "bench" / "results" / "screenshots"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
CHARTS_DRAWN = """() => [...document.querySelectorAll('div[id^="chart-"]')]
                        .every(d => d.querySelector('.main-svg'))"""

pytestmark = needs_debian_program(CHROMIUM, "chromium")


@pytest.fixture(scope="module")
def site(prefect_harness, tmp_path_factory) -> Iterator[tuple[Lake, str]]:
    from flows.dashboard.app import create_app

    lake = dashboard_lake(tmp_path_factory)
    with served(create_app(lake.config, PrefectLinks(lambda: None))) as url:
        yield lake, url


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield chromium
        chromium.close()


@pytest.fixture()
def tab(browser):
    """A fresh page, and the console errors and uncaught exceptions it collects."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    yield page, errors
    context.close()


def visit(page, url: str, name: str) -> int:
    """Open `url`, wait until every chart drew its SVG, screenshot it; the number of charts."""
    page.goto(url)
    page.wait_for_function(CHARTS_DRAWN, timeout=30_000)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
    charts = page.locator('div[id^="chart-"]').count()
    assert page.locator('div[id^="chart-"]:has(.main-svg)').count() == charts
    return charts


def shown(page, key: str) -> str:
    return page.locator(f'[data-k="{key}"]').first.inner_text().strip()


def test_every_page_shows_the_lakes_numbers_and_draws_its_charts(site, tab):
    lake, url = site
    page, errors = tab

    assert visit(page, f"{url}/", "overview") == 0
    (docs, chunks), = lake.sql("SELECT n_documents, n_chunks FROM versions "
                               "WHERE status = 'active'")
    assert (shown(page, "active.documents"), shown(page, "active.chunks")) == (
        f"{docs:,}", f"{chunks:,}")
    for name, value in lake.sql("SELECT metric, value FROM drift_metrics WHERE check_id = "
                                "(SELECT check_id FROM drift_metrics ORDER BY checked_at DESC "
                                "LIMIT 1)"):
        assert shown(page, f"drift.{name}") == metric(value)

    assert visit(page, f"{url}/versions", "versions") == 0
    for version_id, status, documents in lake.sql(
            "SELECT version_id, status, n_documents FROM versions"):
        row = page.locator(f'tr[data-version="{version_id}"]')
        assert row.locator('[data-k="documents"]').inner_text() == f"{documents:,}"
        assert status in row.inner_text()

    assert visit(page, f"{url}/versions/2", "version") == 1  # seconds per stage
    for reason, n in lake.sql("SELECT reason, count(*) FROM quarantine GROUP BY reason",
                              version=2):
        assert shown(page, f"quarantine.{reason}") == str(n)

    page.click('[data-k="card-link"]')
    page.wait_for_selector("article.version-card h1")
    assert page.locator("article.version-card h1").inner_text() == "Version 2 (active)"
    page.screenshot(path=str(SHOTS / "card.png"), full_page=True)

    (n_metrics,), = lake.sql("SELECT count(DISTINCT (evaluator, metric)) FROM quality_metrics")
    assert visit(page, f"{url}/quality", "quality") == n_metrics

    (n_statistics,), = lake.sql("SELECT count(DISTINCT metric) FROM drift_metrics")
    assert visit(page, f"{url}/drift", "drift") == n_statistics

    assert visit(page, f"{url}/map", "map") == 1
    (points,), = lake.sql("SELECT count(*) FROM projections WHERE version_id = 2")
    assert page.locator("#chart-map .scatterlayer .point").count() == points

    page.goto(f"{url}/search")
    page.fill('input[name="q"]', QUERY)
    page.click('form.search button[type="submit"]')
    page.wait_for_selector(".hit")
    assert page.locator('.hit [data-k="doc_id"]').first.inner_text() == XSS
    page.screenshot(path=str(SHOTS / "search.png"), full_page=True)
    assert errors == []


def test_a_hostile_title_shows_as_text_and_runs_nothing(site, tab):
    _, url = site
    page, errors = tab
    for path in ("/versions/2", f"/search?q={QUERY.replace(' ', '+')}"):
        page.goto(f"{url}{path}")
        assert page.get_by_text(XSS, exact=True).count() >= 1, path
        assert page.evaluate("window.__xss") is None
        assert page.locator("img").count() == 0

    page.goto(f"{url}/map")
    page.wait_for_function(CHARTS_DRAWN, timeout=30_000)
    where = page.evaluate("""() => {
        const data = document.getElementById('chart-map').data;
        for (let c = 0; c < data.length; c++) {
            const p = data[c].hovertext.findIndex(h => h.includes('__xss'));
            if (p >= 0) return [c, p];
        }
        return null; }""")
    assert where is not None
    page.evaluate("([c, p]) => Plotly.Fx.hover('chart-map', [{curveNumber: c, pointNumber: p}])",
                  where)
    label = page.locator("#chart-map .hoverlayer").text_content() or ""
    assert XSS in label  # drawn as text in the hover label
    assert page.evaluate("window.__xss") is None and page.locator("img").count() == 0
    assert errors == []
