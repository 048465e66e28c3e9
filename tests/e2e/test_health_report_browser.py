"""The health report in a real browser: headless Chromium (Debian's, driven by Playwright without a browser of its
own) opens the page as a reader would from disk or a mail client's browser view, and finds every chart drawn with
data, nothing fetched from anywhere, and no console errors. It saves a screenshot (HEALTH_REPORT_SCREENSHOT names
where, e.g. docs/health-report.png; otherwise the test's own folder)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from memberflow.health.queries import Period
from memberflow.health.report import build_report
from memberflow_local.health import DuckDBEngine
from support.health_seed import records, write_log

pytestmark = pytest.mark.e2e

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SECTIONS = ("active", "activation", "funnel", "cohorts", "churn", "questions", "tickets", "events", "winback")


@pytest.fixture(scope="module")
def report_file(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("report")
    engine = DuckDBEngine(write_log(folder / "log", records()))
    report = build_report(engine, Period.parse("2026-W47"), community="Seed community")
    page = folder / "2026-W47.html"
    page.write_text(report.html)
    return page


def test_the_report_renders_every_chart_with_data_fetches_nothing_and_logs_no_error(report_file, tmp_path):
    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is not installed: `make install` installs it (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    fetched: list[str] = []
    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1000, "height": 900})
            page.on("request", lambda request: fetched.append(request.url))
            page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(report_file.as_uri(), wait_until="load")

            charts = page.eval_on_selector_all(
                "svg.chart",
                """charts => charts.map(chart => {
                    const box = chart.getBoundingClientRect();
                    const marks = [...chart.querySelectorAll('.mark')].map(mark => {
                        const b = mark.getBoundingClientRect();
                        return {value: Number(mark.dataset.value), area: b.width * b.height};
                    });
                    return {name: chart.dataset.chart, width: box.width, height: box.height, marks};
                })""",
            )
            sections = page.eval_on_selector_all("section", "sections => sections.map(s => s.id)")
            scripts = page.eval_on_selector_all("script", "scripts => scripts.length")
            callout_links = page.eval_on_selector_all(".callouts a", "links => links.map(a => a.getAttribute('href'))")
            shot = Path(os.environ.get("HEALTH_REPORT_SCREENSHOT") or tmp_path / "health-report.png")
            shot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()

    assert set(sections) >= set(SECTIONS)
    names = [chart["name"] for chart in charts]
    assert set(names) >= {
        "daily-active",
        "weekly-active",
        "activation",
        "funnel",
        "cohorts",
        "churn-risk",
        "reply-times",
        "tickets",
        "events",
        "winback",
    }
    for chart in charts:
        assert chart["width"] > 300 and chart["height"] > 50, chart["name"]
        assert chart["marks"], f"{chart['name']} drew no data"
        assert any(mark["value"] > 0 and mark["area"] > 0 for mark in chart["marks"]), chart["name"]
    assert scripts == 0
    assert fetched == [report_file.as_uri()], f"the page fetched {fetched}"
    assert errors == []
    assert callout_links and all(link.startswith("#") and link[1:] in sections for link in callout_links)
    assert shot.stat().st_size > 50_000
