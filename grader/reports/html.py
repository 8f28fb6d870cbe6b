"""The self-contained HTML report: Jinja2 with auto-escaping, charts drawn as inline SVG."""

from __future__ import annotations

from pathlib import Path

from grader.fsutil import atomic_write_text
from grader.reports.aggregate import BatchReport
from grader.reports.charts import charts


def render_html(report: BatchReport) -> str:
    """The report as one HTML page that works offline (no script, nothing fetched); every input
    text is escaped."""
    from importlib.resources import files

    from jinja2 import Environment, select_autoescape

    env = Environment(autoescape=select_autoescape(default=True, default_for_string=True))
    template = env.from_string(files("grader.reports").joinpath("templates/report.html.j2").read_text("utf-8"))
    return template.render(report=report, passed=sum(1 for c in report.candidates if c.passed),
                           charts=charts(report))


def write_html(path: Path, report: BatchReport) -> None:
    atomic_write_text(path, render_html(report))
