"""The HTML report's two bar charts as geometry for inline SVG: no JavaScript, nothing to
download, a few kilobytes.  The template draws them (and escapes every label)."""

from __future__ import annotations

from pydantic import BaseModel

from grader.reports.aggregate import BatchReport
from grader.reports.markdown import distribution

# Candidates in the by-topic chart (the ranking table lists every one).
TOPIC_CHART_MAX = 100
# Colours of the topics, in order (Plotly's default sequence, as the charts had before).
PALETTE = ("#636efa", "#ef553b", "#00cc96", "#ab63fa", "#ffa15a", "#19d3f3", "#ff6692", "#b6e880",
           "#ff97ff", "#fecb52")
# SVG user units, drawn 1:1 in CSS pixels (the page is 1100 pixels wide at most).
WIDTH, TOP, LEFT, RIGHT = 1000, 56, 56, 16
LABEL_CHARS = 22


class Bar(BaseModel):
    x: float
    y: float
    width: float
    height: float
    color: str
    tip: str
    label: str = ""


class Tick(BaseModel):
    y: float
    label: str


class XLabel(BaseModel):
    x: float
    label: str
    full: str
    rotate: bool


class LegendItem(BaseModel):
    x: float
    y: float
    color: str
    label: str


class BarChart(BaseModel):
    """One chart in SVG user units: bars, the y axis' ticks, the x labels, a legend."""

    id: str
    title: str
    y_title: str
    width: float
    height: float
    left: float = LEFT
    top: float = TOP
    bottom: float
    right: float
    ticks: list[Tick]
    bars: list[Bar]
    x_labels: list[XLabel]
    legend: list[LegendItem] = []


def _step(top: float) -> float:
    """A round tick step giving at most about five ticks up to `top`."""
    for step in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000):
        if top / step <= 5:
            return step
    return 10 ** len(str(int(top)))


def _frame(top_value: float, bottom: float) -> tuple[float, list[Tick], float]:
    """The y axis up to a round value above `top_value`: (that value, its ticks, plot height)."""
    step = _step(top_value)
    ymax = max(step, -(-top_value // step) * step)
    plot = bottom - TOP
    ticks = [Tick(y=round(bottom - plot * v / ymax, 1), label=f"{v:g}")
             for v in [i * step for i in range(int(ymax // step) + 1)]]
    return ymax, ticks, plot


def _short(text: str) -> str:
    return text if len(text) <= LABEL_CHARS else text[: LABEL_CHARS - 1] + "…"


def distribution_chart(report: BatchReport) -> BarChart:
    """Answers by percent of their question's points, in ten bins."""
    counts = distribution(report.answer_scores)
    width, height = WIDTH, 300
    bottom = height - 40
    ymax, ticks, plot = _frame(max(counts) or 1, bottom)
    slot = (width - LEFT - RIGHT) / len(counts)
    bars, labels = [], []
    for i, n in enumerate(counts):
        name = f"{i * 10}–{i * 10 + 10}%"
        h = round(plot * n / ymax, 1)
        x = LEFT + i * slot
        bars.append(Bar(x=round(x + slot * 0.1, 1), y=round(bottom - h, 1), width=round(slot * 0.8, 1),
                        height=h, color="#3b6fd8", tip=f"{name}: {n} answer(s)", label=str(n) if n else ""))
        labels.append(XLabel(x=round(x + slot / 2, 1), label=name, full=name, rotate=False))
    return BarChart(id="chart-distribution", title="Score distribution (answers by percent of points)",
                    y_title="answers", width=width, height=height, bottom=bottom, right=width - RIGHT, ticks=ticks,
                    bars=bars, x_labels=labels)


def topics_chart(report: BatchReport) -> BarChart:
    """Each candidate's percent by topic, grouped by candidate (the top ranks only)."""
    shown = report.candidates[:TOPIC_CHART_MAX]
    title = "Each candidate's scores by topic (%)"
    if len(shown) < len(report.candidates):
        title = f"Scores by topic (%) of the top {len(shown)} of {len(report.candidates)} candidates"
    n_topics = max(1, len(report.topics))
    group = max(48.0, n_topics * 14.0 + 16)
    width = max(float(WIDTH), LEFT + RIGHT + group * len(shown))
    group = (width - LEFT - RIGHT) / max(1, len(shown))
    bar_w = (group - 16) / n_topics
    height = 380
    bottom = height - 100  # room for the candidates' names, slanted
    _, ticks, plot = _frame(100, bottom)
    colors = {t: PALETTE[i % len(PALETTE)] for i, t in enumerate(report.topics)}
    bars, labels = [], []
    for ci, c in enumerate(shown):
        x0 = LEFT + ci * group + 8
        for ti, t in enumerate(report.topics):
            v = c.topics.get(t)
            if v is None:
                continue  # no question of this topic was asked of this candidate
            h = round(plot * min(v, 100) / 100, 1)
            bars.append(Bar(x=round(x0 + ti * bar_w, 1), y=round(bottom - h, 1), width=round(bar_w * 0.9, 1),
                            height=h, color=colors[t], tip=f"{c.candidate}, {t}: {v:g}%"))
        labels.append(XLabel(x=round(LEFT + ci * group + group / 2, 1), label=_short(c.candidate), full=c.candidate,
                             rotate=True))
    legend, x, y = [], LEFT, 34.0
    for t in report.topics:
        need = 24 + 7 * len(t)
        if x + need > width - RIGHT and x > LEFT:
            x, y = LEFT, y + 14  # wrap the legend onto another line
        legend.append(LegendItem(x=round(x, 1), y=y, color=colors[t], label=t))
        x += need
    return BarChart(id="chart-topics", title=title, y_title="% of points", width=round(width, 1), height=height,
                    bottom=bottom, right=round(width - RIGHT, 1), ticks=ticks, bars=bars, x_labels=labels, legend=legend)


def charts(report: BatchReport) -> list[BarChart]:
    """The report's charts, in order."""
    return [distribution_chart(report), topics_chart(report)]
