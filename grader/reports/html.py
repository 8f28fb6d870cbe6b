"""The self-contained HTML report: Jinja2 with auto-escaping, charts by Plotly (inlined)."""

from __future__ import annotations

import json
from pathlib import Path

from grader.fsutil import atomic_write_text
from grader.reports.aggregate import BatchReport
from grader.reports.markdown import distribution

# Candidates in the by-topic chart (the ranking table lists every one).
TOPIC_CHART_MAX = 100


def figures(report: BatchReport) -> dict[str, dict]:
    """Plotly figures as plain JSON-able dicts: score distribution and scores by topic."""
    import plotly.graph_objects as go

    counts = distribution(report.answer_scores)
    dist = go.Figure(go.Bar(x=[f"{i * 10}–{i * 10 + 10}%" for i in range(10)], y=counts, marker_color="#3b6fd8"))
    dist.update_layout(title="Score distribution (answers by percent of points)", xaxis_title="score",
                       yaxis_title="answers", template="plotly_white", margin=dict(t=60, b=50))
    # Thousands of grouped bars are unreadable and cost tens of MB to build: the top ranks only.
    shown = report.candidates[:TOPIC_CHART_MAX]
    title = "Each candidate's scores by topic (%)"
    if len(shown) < len(report.candidates):
        title = f"Scores by topic (%) of the top {len(shown)} of {len(report.candidates)} candidates"
    topics = go.Figure([
        go.Bar(name=t, x=[c.candidate for c in shown], y=[c.topics[t] for c in shown]) for t in report.topics
    ])
    topics.update_layout(title=title, barmode="group", yaxis_range=[0, 100],
                         yaxis_title="% of points", template="plotly_white", margin=dict(t=60, b=80))
    # Through JSON, so numpy arrays become lists and the template's tojson escapes the text.
    return {"chart-distribution": json.loads(dist.to_json()), "chart-topics": json.loads(topics.to_json())}


def render_html(report: BatchReport) -> str:
    """The report as one HTML page that works offline; every input text is escaped."""
    from importlib.resources import files

    from jinja2 import Environment, select_autoescape
    from plotly.offline import get_plotlyjs

    env = Environment(autoescape=select_autoescape(default=True, default_for_string=True))
    template = env.from_string(files("grader.reports").joinpath("templates/report.html.j2").read_text("utf-8"))
    return template.render(
        report=report, passed=sum(1 for c in report.candidates if c.passed),
        figures=figures(report), plotly_js=get_plotlyjs(),
    )


def write_html(path: Path, report: BatchReport) -> None:
    atomic_write_text(path, render_html(report))
