"""`grader batch --engine ray`: the same batch as a Ray Data pipeline, on one machine or a cluster.

The driver validates the input and owns the results file exactly as the local engine does
(the same `Journal`: the same records, resume keys and models check); Ray runs the grading:
an actor pool where each actor loads the bank and the model once, and grades batches of
rows.  Output order is preserved, so the results file is written in input order and equals
the local engine's.  A worker that dies is restarted and its batch retried by Ray; since only
the driver writes, every row gets exactly one record.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from grader.bank import Bank
from grader.batch.ingest import AnswerRow, Source
from grader.batch.journal import BatchSummary, Journal
from grader.bank import question_for_row
from grader.batch.plan import BatchPlan
from grader.batch.run import CHUNK_ROWS, OnVectors
from grader.config import Settings
from grader.errors import ConfigError
from grader.models import GradeResult
from grader.scoring import Grader

INSTALL_HINT = "the Ray engine needs Ray: pip install -e '.[ray]' (in the grader checkout)"


def require_ray():
    """The ray module, or a ConfigError saying how to install it."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise ConfigError(INSTALL_HINT) from None
    return ray


class GradeActor:
    """One Ray actor: loads the bank and the grader once, then grades batches of rows."""

    def __init__(self, settings: dict, calibration: str | None, model: str | None):
        from grader.bank import load_bank
        from grader.scoring import grader_from_settings

        # The driver's settings as they are: nothing is read from this worker's environment.
        s = Settings.model_validate(settings)
        self.bank = load_bank(s.questions, s.rubrics_dir)
        self.grader = grader_from_settings(s, calibration, model)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from grader.scoring import Item

        rows = [AnswerRow.model_validate_json(j) for j in batch["row"]]
        items = [Item(question_for_row(r, self.bank), self.bank.rubrics.get(r.question_id), r.answer) for r in rows]
        results, vectors = self.grader.grade_many(items, with_answer_vectors=True)
        dim = next((v.shape[0] for v in vectors if v is not None), 0)
        vecs = [(v if v is not None else np.zeros(dim, dtype=np.float32)).astype(np.float16).tobytes()
                for v in vectors]
        return {"line": np.array([r.line for r in rows], dtype=np.int64),
                "result": np.array([res.model_dump_json() for res in results], dtype=object),
                "vector": np.array(vecs, dtype=object),
                "has_vector": np.array([v is not None for v in vectors])}


def worker_settings(settings: Settings, threads: int) -> dict:
    """The settings the actors grade with: the driver's, paths made absolute (other nodes'
    working folder differs), their share of the threads; no API key (no LLM on Ray)."""
    def absolute(p: Path | None) -> Path | None:
        return None if p is None else Path(p).resolve()

    s = settings.model_copy(update={
        "questions": absolute(settings.questions), "rubrics_dir": absolute(settings.rubrics_dir),
        "cache_dir": absolute(settings.cache_dir), "calibration": absolute(settings.calibration),
        "trained_model": absolute(settings.trained_model), "graded": absolute(settings.graded), "threads": threads,
    })
    return s.model_dump(by_alias=True, exclude={"openai_api_key"})


def run_batch_ray(
    src: Source,
    bank: Bank,
    grader: Grader,
    plan: BatchPlan,
    results_path: Path,
    *,
    settings: Settings,
    calibration: Path | None = None,
    model: Path | None = None,
    resume: bool = False,
    address: str | None = None,
    num_cpus: int | None = None,
    actors: int | None = None,
    chunk_rows: int = CHUNK_ROWS,
    on_progress: Callable[[int], None] | None = None,
    on_vectors: OnVectors | None = None,
) -> BatchSummary:
    """Grade every valid row not yet in the results file with Ray; same records as run_batch.

    `grader` is the driver's (built from the same settings, calibration and model as the
    actors'): it says which models score (checked on --resume) and embeds the answers of rows
    graded before, for copy detection, as the local engine does (from the embedding cache)."""
    ray = require_ray()
    summary = BatchSummary(results_path=results_path, rows=plan.rows, graded_now=0, already_done=0,
                           skipped=plan.problems)
    started_here = False
    with Journal(results_path, resume=resume, scored_by=grader.scored_by()) as journal:
        todo: list[AnswerRow] = []
        resumed: list[AnswerRow] = []
        for row in plan.rows_to_grade(src):
            (resumed if row.key in journal.done else todo).append(row)
        summary.already_done = len(resumed)
        if on_vectors is not None:
            for i in range(0, len(resumed), chunk_rows):
                part = resumed[i:i + chunk_rows]
                on_vectors(part, grader.answer_vectors([r.answer for r in part]))
        if on_progress and resumed:
            on_progress(len(resumed))
        if not todo:
            return summary
        try:
            if not ray.is_initialized():
                kwargs = {"address": address} if address else {"num_cpus": num_cpus or os.cpu_count(),
                                                               "include_dashboard": False}
                ray.init(logging_level="ERROR", log_to_driver=False, **kwargs)
                started_here = True
            ctx = ray.data.DataContext.get_current()
            ctx.execution_options.preserve_order = True  # results file in input order, as locally
            ctx.enable_progress_bars = False
            cpus = int(ray.cluster_resources().get("CPU", 1))
            n_actors = actors or max(1, cpus // 2)
            threads = max(1, cpus // n_actors)
            cal = calibration or settings.calibration
            mod = model or settings.trained_model
            ds = ray.data.from_items([{"row": r.model_dump_json()} for r in todo],
                                     override_num_blocks=max(1, len(todo) // chunk_rows))
            graded = ds.map_batches(
                GradeActor,
                fn_constructor_kwargs={"settings": worker_settings(settings, threads),
                                       "calibration": str(Path(cal).resolve()) if cal else None,
                                       "model": str(Path(mod).resolve()) if mod else None},
                batch_size=chunk_rows, batch_format="numpy", concurrency=n_actors, num_cpus=threads,
                # A dead worker is restarted and its batch tried again.
                max_restarts=-1, max_task_retries=-1,
            )
            pos = 0
            for batch in graded.iter_batches(batch_size=None, batch_format="numpy"):
                rows = todo[pos:pos + len(batch["result"])]
                if [r.line for r in rows] != [int(n) for n in batch["line"]]:  # pragma: no cover - Ray's promise
                    raise RuntimeError("Ray returned graded rows out of input order")
                results = [GradeResult.model_validate_json(j) for j in batch["result"]]
                summary.graded_now += journal.append(
                    rows, [question_for_row(r, bank).topic for r in rows], results)
                if on_vectors is not None:
                    vecs = [np.frombuffer(b, dtype=np.float16).astype(np.float32) if ok else None
                            for b, ok in zip(batch["vector"], batch["has_vector"])]
                    on_vectors(rows, vecs)
                pos += len(rows)
                if on_progress:
                    on_progress(len(rows))
        finally:
            if started_here:
                ray.shutdown()
    return summary
