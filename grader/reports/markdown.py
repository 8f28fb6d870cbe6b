"""Markdown reports: one answer, a practice session, a batch."""

from __future__ import annotations

from typing import TYPE_CHECKING

from grader.models import GradeResult, Session

if TYPE_CHECKING:
    from grader.reports.aggregate import BatchReport


def md_escape(text: str) -> str:
    """Text safe inside a Markdown paragraph or table cell."""
    out = " ".join(str(text).split())
    for ch in "\\`*_{}[]<>#|":
        out = out.replace(ch, "\\" + ch)
    return out


def result_markdown(result: GradeResult, answer: str | None = None, level: int = 1) -> str:
    """A readable Markdown account of one graded answer."""
    h = "#" * level
    lines = [
        f"{h} {md_escape(result.question_id)}: {result.score:g}/{result.max_score:g} ({result.band})",
        "",
        f"**Question.** {md_escape(result.question)}",
        "",
    ]
    if answer is not None:
        lines += [f"**Answer.** {md_escape(answer) or '_(no answer)_'}", ""]
    c = result.components
    summary = c.summary()
    lines += [md_escape(summary[0].upper() + summary[1:]), ""]
    covered = [x for x in result.concepts if x.matched]
    missed = [x for x in result.concepts if not x.matched]
    if covered:
        lines.append(f"{h}# Covered")
        for x in covered:
            how = "" if x.via == "terms" else " (partial: in other words)"
            lines.append(f"- **{md_escape(x.name)}**{how}: “{md_escape(x.evidence or '')}”")
        lines.append("")
    if missed:
        lines.append(f"{h}# Missed")
        for x in missed:
            req = " (required)" if x.required else ""
            lines.append(f"- **{md_escape(x.name)}**{req}: {md_escape(x.hint or '')}")
        lines.append("")
    if result.misconceptions:
        lines.append(f"{h}# Misconceptions")
        for m in result.misconceptions:
            lines.append(
                f"- **{md_escape(m.name)}** (−{m.penalty:g}): “{md_escape(m.evidence)}”. {md_escape(m.why)}"
            )
        lines.append("")
    if result.nearest_graded:
        n = result.nearest_graded
        reason = f" {md_escape(n.reason)}" if n.reason else ""
        lines += [f"Closest to a graded answer that scored {n.score:g}/{n.max_score:g} "
                  f"(similarity {n.similarity:.2f}):{reason} “{md_escape(n.answer)}”", ""]
    if result.flags:
        lines += [f"Flags: {', '.join(md_escape(f) for f in result.flags)}", ""]
    if result.feedback:
        lines += [f"{h}# Feedback", "", md_escape(result.feedback), ""]
    return "\n".join(lines)


def session_markdown(session: "Session", model_answers: dict[str, str] | None = None) -> str:
    """Markdown report of a practice session: summary table, then each answer."""
    lines = [
        f"# Practice session {session.started}",
        "",
        f"Total: **{session.total:g} / {session.max_total:g}** over {len(session.answers)} question(s).",
        "",
        "| Question | Score | Band |",
        "|---|---|---|",
    ]
    for a in session.answers:
        r = a.result
        lines.append(f"| {md_escape(r.question_id)} | {r.score:g}/{r.max_score:g} | {r.band} |")
    lines.append("")
    for a in session.answers:
        lines.append(result_markdown(a.result, a.answer, level=2))
        if model_answers and a.result.question_id in model_answers:
            lines += [f"**Model answer.** {md_escape(model_answers[a.result.question_id])}", ""]
    return "\n".join(lines)


def _bar(percent: float, width: int = 10) -> str:
    full = int(round(percent / 100 * width))
    return "█" * full + "░" * (width - full)


def distribution(percents: list[float], bins: int = 10) -> list[int]:
    """Counts of answer percents in equal bins 0-10, 10-20, ... 90-100."""
    counts = [0] * bins
    for p in percents:
        counts[min(bins - 1, int(p // (100 / bins)))] += 1
    return counts


def batch_markdown(report: "BatchReport") -> str:
    """The screening report: ranking, pass/fail, question statistics, charts, details."""
    e = md_escape
    passed = sum(1 for c in report.candidates if c.passed)
    lines = [
        f"# {e(report.title)}",
        "",
        f"Source: `{e(report.source)}` · {report.counts} · model `{e(report.model)}`"
        + (f" · {report.generated}" if report.generated else ""),
        "",
        f"Pass mark {report.pass_mark:g}%: **{passed} passed**, {len(report.candidates) - passed} did not.",
        "",
    ]
    if report.human:
        lines += [f"{len(report.human)} answer score(s) set by a reviewer (grader review), marked ✎; "
                  "totals and ranks use them.", ""]
    lines += [
        "## Ranking",
        "",
        "| Rank | Candidate | Total | % | Result | Answered | Flags |" + (" Reviewed | Decision |" if report.human else ""),
        "|---:|---|---:|---:|---|---:|---:|" + ("---:|---|" if report.human else ""),
    ]
    for c in report.candidates:
        lines.append(f"| {c.rank} | {e(c.candidate)} | {c.total:g}/{c.max_total:g} | {c.percent:g} | "
                     f"{'pass' if c.passed else 'fail'} | {c.answered}/{c.answered + c.skipped} | {c.flags or ''} |"
                     + (f" {'✎ ' + str(c.reviewed) if c.reviewed else ''} | {c.verdict or ''} |" if report.human else ""))
    counts = distribution(report.answer_scores)
    labels = ", ".join(f'"{i * 10}-{i * 10 + 10}"' for i in range(10))
    lines += [
        "",
        "## Score distribution",
        "",
        "Answers by percent of the question's points.",
        "",
        "```mermaid",
        "xychart-beta",
        '    title "Answers by score (%)"',
        f"    x-axis [{labels}]",
        '    y-axis "answers"',
        f"    bar [{', '.join(map(str, counts))}]",
        "```",
        "",
        "| % | answers | |",
        "|---|---:|---|",
    ]
    top = max(counts) or 1
    for i, n in enumerate(counts):
        lines.append(f"| {i * 10}-{i * 10 + 10} | {n} | {'█' * round(20 * n / top)} |")
    lines += ["", "## Scores by topic", "", "| Candidate | " + " | ".join(e(t) for t in report.topics) + " |",
              "|---|" + "---|" * len(report.topics)]
    for c in report.candidates:
        cells = " | ".join("–" if c.topics[t] is None else f"{_bar(c.topics[t])} {c.topics[t]:g}%"
                           for t in report.topics)
        lines.append(f"| {e(c.candidate)} | {cells} |")
    lines += ["", "## Questions", "", "| Question | Topic | Answered | Mean | Spread (sd) | Min–max | Most missed concepts |",
              "|---|---|---:|---:|---:|---|---|"]
    for q in report.questions:
        missed = "; ".join(f"{e(name)} ({n})" for name, n in q.most_missed) or "–"
        lines.append(f"| {e(q.question_id)} | {e(q.topic)} | {q.answered}/{q.n} | {q.mean:g}/{q.max_score:g} "
                     f"({q.mean_percent:g}%) | {q.stdev:g} | {q.min:g}–{q.max:g} | {missed} |")
    lines += ["", "## Near-identical answers", ""]
    if report.pairs:
        if report.pairs_total > len(report.pairs):
            lines += [f"{report.pairs_total} pairs found; the {len(report.pairs)} closest are listed.", ""]
        lines += ["| Question | Candidate | Candidate | Similarity | Exact copy |", "|---|---|---|---:|---|"]
        for p in report.pairs:
            lines.append(f"| {e(p.question_id)} | {e(p.candidate_a)} | {e(p.candidate_b)} | {p.similarity:.3f} | "
                         f"{'yes' if p.exact else ''} |")
    else:
        lines.append("None found.")
    if report.flagged:
        lines += ["", "## Flagged answers", "", "| Candidate | Question | Flags |", "|---|---|---|"]
        for cand, qid, flags in report.flagged:
            lines.append(f"| {e(cand)} | {e(qid)} | {e(', '.join(flags))} |")
    lines += ["", "## Candidates", ""]
    if report.details is None:
        lines.append("Per-answer details are in the CSV and JSONL outputs (too many answers to list here).")
    else:
        for c in report.candidates:
            lines += [f"### {c.rank}. {e(c.candidate)}: {c.total:g}/{c.max_total:g} ({c.percent:g}%)", ""]
            for r in report.details.get(c.candidate, []):
                covered = ", ".join(e(x.name) + ("" if x.via == "terms" else " (partial)")
                                    for x in r.concepts if x.matched) or "–"
                missed = ", ".join(e(x.name) for x in r.concepts if not x.matched) or "–"
                hg = report.human_grade(r)
                score = (f"✎ {hg.score:g}/{r.max_score:g} human score by {e(hg.reviewer)} (grader: {hg.grader_score:g})"
                         if hg else f"{r.score:g}/{r.max_score:g} ({r.band})")
                lines.append(f"- **{e(r.question_id)}** {score}. "
                             f"Covered: {covered}. Missed: {missed}."
                             + (f" Misconceptions: {', '.join(e(m.name) for m in r.misconceptions)}." if r.misconceptions else "")
                             + (f" Flags: {e(', '.join(r.flags))}." if r.flags else "")
                             + (f" Closest graded answer: {r.nearest_graded.score:g}/{r.nearest_graded.max_score:g}."
                                if r.nearest_graded else ""))
            lines.append("")
    return "\n".join(lines) + "\n"
