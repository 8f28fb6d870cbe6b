"""`grader batch --engine ray`: the same batch as a Ray Data pipeline, on one machine or a cluster.

The driver validates the input and owns the results file exactly as the local engine does;
Ray runs the grading: an actor pool where each actor loads the bank and the model once, and
grades batches of rows.  Output order is preserved, so the results file is written in input
order and equals the local engine's.  A worker that dies is restarted and its batch retried
by Ray; since only the driver writes, every row gets exactly one record.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from grader.bank import Bank
from grader.batch import CHUNK_ROWS, BatchPlan, BatchRecord, BatchSummary, _append, read_journal
from grader.errors import ConfigError
from grader.ingest import AnswerRow, RowProblem, Source, iter_rows

INSTALL_HINT = "the Ray engine needs Ray: pip install 'grader[ray]'"


def _import_ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise ConfigError(INSTALL_HINT) from None
    return ray


class GradeActor:
    """One Ray actor: loads the bank and the grader once, then grades batches of rows."""

    def __init__(self, settings_env: dict[str, str], pid_dir: str | None = None):
        os.environ.update(settings_env)
        from grader.bank import load_bank
        from grader.config import get_settings
        from grader.scoring import grader_from_settings

        get_settings.cache_clear()
        s = get_settings()
        self.bank = load_bank(s.questions, s.rubrics_dir)
        self.grader = grader_from_settings(s)
        if pid_dir:  # lets tests find (and kill) the worker processes
            Path(pid_dir, f"{os.getpid()}.pid").write_text(str(os.getpid()))

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from grader.batch import question_for_row
        from grader.scoring import Item

        rows = [AnswerRow.model_validate_json(j) for j in batch["row"]]
        items = [Item(question_for_row(r, self.bank), self.bank.rubrics.get(r.question_id), r.answer) for r in rows]
        results, vectors = self.grader.grade_many(items, with_answer_vectors=True)
        from grader.scoring.engine import MAX_ANSWER_CHARS

        records = [
            BatchRecord(**res.model_dump(), candidate=r.candidate, answer=r.answer[:MAX_ANSWER_CHARS],
                        submission_id=r.submission_id, line=r.line, topic=it.question.topic).model_dump_json()
            for r, it, res in zip(rows, items, results)
        ]
        dim = next((v.shape[0] for v in vectors if v is not None), 0)
        vecs = [(v if v is not None else np.zeros(dim, dtype=np.float32)).astype(np.float16).tobytes()
                for v in vectors]
        return {"record": np.array(records, dtype=object), "vector": np.array(vecs, dtype=object),
                "has_vector": np.array([v is not None for v in vectors])}


def _settings_env() -> dict[str, str]:
    # Workers read the same settings as the driver (paths made absolute for other nodes' cwd).
    from grader.config import get_settings

    s = get_settings()
    env = {k: v for k, v in os.environ.items() if k.startswith("GRADER_")}
    env.update({
        "GRADER_QUESTIONS": str(Path(s.questions).resolve()),
        "GRADER_RUBRICS_DIR": str(Path(s.rubrics_dir).resolve()),
        "GRADER_CACHE_DIR": str(Path(s.cache_dir).resolve()),
        "GRADER_THREADS": str(s.thread_count()),
    })
    return env


def run_batch_ray(
    src: Source,
    bank: Bank,
    plan: BatchPlan,
    results_path: Path,
    *,
    resume: bool = False,
    address: str | None = None,
    num_cpus: int | None = None,
    actors: int | None = None,
    chunk_rows: int = CHUNK_ROWS,
    on_progress: Callable[[int], None] | None = None,
    on_vectors: Callable[[list[AnswerRow], list[np.ndarray | None]], None] | None = None,
    pid_dir: str | None = None,
) -> BatchSummary:
    """Grade every valid row not yet in the results file with Ray; same records as run_batch."""
    ray = _import_ray()
    done = read_journal(results_path) if resume else {}
    if not resume and results_path.exists():
        results_path.unlink()
    summary = BatchSummary(results_path=results_path, rows=plan.rows, graded_now=0, already_done=0,
                           skipped=plan.problems)
    todo: list[AnswerRow] = []
    for row in iter_rows(src):
        if isinstance(row, RowProblem) or row.line in plan.skipped_lines:
            continue
        if row.key in done:
            summary.already_done += 1
        else:
            todo.append(row)
    if on_progress and summary.already_done:
        on_progress(summary.already_done)
    results_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(results_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    started_here = False
    try:
        if not todo:
            return summary
        if not ray.is_initialized():
            kwargs = {"address": address} if address else {"num_cpus": num_cpus or os.cpu_count(),
                                                           "include_dashboard": False}
            ray.init(logging_level="ERROR", log_to_driver=False, **kwargs)
            started_here = True
        ctx = ray.data.DataContext.get_current()
        ctx.execution_options.preserve_order = True  # results file in input order, as locally
        ctx.enable_progress_bars = False
        n_actors = actors or max(1, int(ray.cluster_resources().get("CPU", 1)) // 2)
        threads = max(1, int(ray.cluster_resources().get("CPU", 1)) // n_actors)
        env = _settings_env() | {"GRADER_THREADS": str(threads)}
        ds = ray.data.from_items([{"row": r.model_dump_json()} for r in todo],
                                 override_num_blocks=max(1, len(todo) // chunk_rows))
        graded = ds.map_batches(
            GradeActor, fn_constructor_kwargs={"settings_env": env, "pid_dir": pid_dir},
            batch_size=chunk_rows, batch_format="numpy", concurrency=n_actors, num_cpus=threads,
            # A dead worker is restarted and its batch tried again.
            max_restarts=-1, max_task_retries=-1,
        )
        pos = 0
        for batch in graded.iter_batches(batch_size=None, batch_format="numpy"):
            recs = [BatchRecord.model_validate_json(j) for j in batch["record"]]
            _append(fd, recs)
            if on_vectors is not None:
                vecs = [np.frombuffer(b, dtype=np.float16).astype(np.float32) if ok else None
                        for b, ok in zip(batch["vector"], batch["has_vector"])]
                on_vectors(todo[pos : pos + len(recs)], vecs)
            pos += len(recs)
            summary.graded_now += len(recs)
            if on_progress:
                on_progress(len(recs))
    finally:
        os.close(fd)
        if started_here:
            ray.shutdown()
    return summary
