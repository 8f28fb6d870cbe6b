"""`grader evaluate` as one library call: a graded file, the settings, the options in; the
evaluation (and a trained model's figures) out."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

import numpy as np
from pydantic import BaseModel, Field

from grader.accuracy.evaluate import Evaluation, evaluate
from grader.accuracy.graded import signals_for
from grader.accuracy.llm_eval import LLMFigures
from grader.accuracy.with_graded import GradedFigure, evaluate_per_question, evaluate_pool, zero_shot_inputs
from grader.errors import InputError
from grader.graded_file import read_graded

# A (label) -> context manager yielding a (done, total) progress callback or None.
ProgressFactory = Callable[[str], AbstractContextManager]


class EvaluateOptions(BaseModel):
    """What `grader evaluate` was asked."""

    file: Path
    cv: int | None = None
    calibration: Path | None = None
    limit: int | None = None
    model: Path | None = None
    predictions: Path | None = None
    graded: Path | None = None
    graded_per_question: int | None = None
    seed: int = 0
    repeats: int = 5
    llm: bool = False
    llm_weight: float | None = None
    no_cache: bool = False
    dry_run: bool = False
    repeat: int = 1


class EvaluateOutcome(BaseModel):
    """The evaluation, the trained model's own figures (with --model) and warnings to show."""

    evaluation: Evaluation
    trained: dict | None = None
    warnings: list[str] = []
    llm: LLMFigures | None = None
    dry_run_requests: int | None = Field(default=None, description="--llm --dry-run: requests it would make.")


def _no_progress(_label: str) -> AbstractContextManager:
    return nullcontext(None)


def evaluate_file(opts: EvaluateOptions, settings, progress: ProgressFactory = _no_progress) -> EvaluateOutcome:
    """Read a graded file and measure agreement: bank rows through the pipeline `grade` ships
    (same settings, calibration and model), the others against their own reference answers."""
    from grader.embedding import make_embedder, make_second_embedder
    from grader.scoring.calibration import load_calibration
    from grader.scoring.pipeline import check_trained, grader_from_settings
    from grader.scoring.trained import CALIBRATION_FILE

    if opts.cv is not None and opts.cv < 2:
        raise InputError(f"--cv: {opts.cv} folds; at least 2 are needed")
    provider = _llm_check(opts, settings)
    rows, bank = _read(opts, settings)
    model = opts.model or settings.trained_model
    cal_path = opts.calibration or settings.calibration
    if model is not None and cal_path is None and (Path(model) / CALIBRATION_FILE).is_file():
        cal_path = Path(model) / CALIBRATION_FILE
    cal = load_calibration(cal_path)
    if model is None:
        check_trained(cal, cal_path, None, None)
    embedder = make_embedder(settings)
    second = make_second_embedder(settings) if cal.second else None
    grader = grader_from_settings(settings, opts.calibration, opts.model) if bank is not None else None
    name = str(cal_path) if cal_path else "default"
    warnings = []
    if cal.model != embedder.name:
        warnings.append(f"the calibration was fitted with {cal.model!r}, these signals come from {embedder.name!r}")
    trained = None
    if model is None:
        with progress("Embedding") as cb:
            result = evaluate(rows, embedder, cal, cv=opts.cv, file=str(opts.file), calibration_name=name,
                              progress=cb, second=second, bank=bank, grader=grader)
    else:
        trained = _with_trained_model(model, rows, embedder, cal, opts, cal_path,
                                      second, settings, progress)
        result = trained.pop("result")
    if opts.predictions is not None:
        write_predictions(opts.predictions, result)
    outcome = EvaluateOutcome(evaluation=result, trained=trained, warnings=warnings)
    if provider is not None:
        _with_llm(outcome, opts, settings, rows, bank, provider, progress)
    return outcome


def _llm_check(opts: EvaluateOptions, settings):
    """`--llm`: the provider (ConfigError at once when the LLM is not set up), else None."""
    if not opts.llm:
        if opts.dry_run or opts.repeat != 1 or opts.no_cache or opts.llm_weight is not None:
            raise InputError("--dry-run, --repeat, --no-cache and --llm-weight go with --llm")
        return None
    if opts.repeat < 1:
        raise InputError(f"--repeat: {opts.repeat}; at least 1")
    if opts.model is not None or opts.cv:
        raise InputError("--llm measures the score `grade` ships: drop --model and --cv")
    from grader.llm.batch import make_provider

    # --repeat asks again on purpose: the cache would give N copies of one reply.
    return make_provider(settings, use_cache=not opts.no_cache and opts.repeat == 1)


def _with_llm(outcome: EvaluateOutcome, opts, settings, rows, bank, provider, progress) -> None:
    from grader.accuracy.llm_eval import evaluate_llm, review_items
    from grader.llm.batch import dry_run_count
    from grader.llm.blend import BlendParams
    from grader.llm.options import LLMOptions

    o = LLMOptions()
    if opts.dry_run:
        items, _ = review_items(rows, outcome.evaluation, bank)
        outcome.dry_run_requests = dry_run_count(items, provider) * opts.repeat
        return
    with progress("Asking the LLM") as cb:
        outcome.llm = evaluate_llm(rows, outcome.evaluation, bank, provider,
                                   params=BlendParams.from_settings(settings, opts.llm_weight),
                                   concurrency=settings.llm_concurrency, repeat=opts.repeat,
                                   base_seed=o.llm_seed, mode=o.llm_mode, progress=cb, file=str(opts.file))


class GradedOutcome(BaseModel):
    """`evaluate --graded` / `--graded-per-question`: the figure and warnings to show."""

    figure: GradedFigure
    warnings: list[str] = []


def evaluate_learning(opts: EvaluateOptions, settings, progress: ProgressFactory = _no_progress) -> GradedOutcome:
    """Agreement when grader learns from graded answers: from a pool file (`graded`, answers
    disjoint from the file's) or K per question of the file itself (`graded_per_question`)."""
    from grader.embedding import make_embedder, make_second_embedder
    from grader.scoring import Grader
    from grader.scoring.calibration import load_calibration
    from grader.scoring.pipeline import grader_from_settings

    if (opts.graded is None) == (opts.graded_per_question is None):
        raise InputError("give one of --graded POOL and --graded-per-question K")
    if opts.cv or opts.model or opts.predictions:
        raise InputError("--graded and --graded-per-question measure on their own: drop --cv, --model and --predictions")
    if opts.graded_per_question is not None and opts.graded_per_question < 0:
        raise InputError(f"--graded-per-question: {opts.graded_per_question}; 0 or more")
    if opts.repeats < 1:
        raise InputError(f"--repeats: {opts.repeats}; at least 1")
    rows, bank = _read(opts, settings)
    warnings: list[str] = []
    pool: list = []
    dropped = 0
    if opts.graded is not None:
        full = bank or _bank_or_none(settings)
        pool_all = read_graded(opts.graded, bank=full)
        seen = {r.answer.strip() for r in rows}
        pool = [r for r in pool_all if r.answer.strip() not in seen]
        dropped = len(pool_all) - len(pool)
        if dropped:
            warnings.append(f"{opts.graded}: {dropped} graded answer(s) dropped: their text is also in {opts.file}")
        if not pool:
            raise InputError(f"{opts.graded}: every graded answer is also in {opts.file}; nothing left to learn from")
        if any(r.from_bank for r in pool):  # read with the bank: it is loaded already
            bank = full
    everything = list(rows) + pool
    cal = load_calibration(opts.calibration or settings.calibration)
    embedder = make_embedder(settings)
    second = make_second_embedder(settings) if cal.second else None
    # Zero-shot: what is learned is added here, from the pool or split, never from GRADER_GRADED.
    zero_shot = settings.model_copy(update={"graded": None})
    grader = grader_from_settings(zero_shot, opts.calibration) if bank is not None else Grader(embedder)
    with progress("Embedding") as cb:
        zs = zero_shot_inputs(everything, embedder, cal, grader, bank=bank, second=second, progress=cb,
                              file=str(opts.file))
    if opts.graded is not None:
        figure = evaluate_pool(str(opts.file), rows, pool, zs, dropped)
    else:
        figure = evaluate_per_question(str(opts.file), rows, zs, opts.graded_per_question, opts.seed, opts.repeats)
    return GradedOutcome(figure=figure, warnings=warnings)


def _bank_or_none(settings):
    """The configured bank, or None where it cannot be read (only rows that name it need it)."""
    from grader.bank import load_bank

    try:
        return load_bank(settings.questions, settings.rubrics_dir)
    except InputError:
        return None


def _read(opts: EvaluateOptions, settings):
    """The graded rows and the bank their bank rows were read with (None if none are)."""
    from grader.bank import load_bank

    try:
        bank, problem = load_bank(settings.questions, settings.rubrics_dir), None
    except InputError as exc:  # only an error if a row needs the bank
        bank, problem = None, exc
    try:
        rows = read_graded(opts.file, opts.limit, bank)
    except InputError as exc:
        if problem is not None and "reference_answer: needed" in str(exc):
            raise problem from None
        raise
    return rows, bank if any(r.from_bank for r in rows) else None


def write_predictions(path: Path, result: Evaluation) -> None:
    """One JSON line per graded row: its line, question, predicted and human score."""
    from grader.fsutil import atomic_write_text

    atomic_write_text(path, "".join(p.model_dump_json() + "\n" for p in result.predictions))


def _with_trained_model(model_dir, rows, embedder, cal, opts: EvaluateOptions, cal_path, second, settings,
                        progress: ProgressFactory) -> dict:
    """`evaluate --model DIR`: the usual evaluation (same figures as without --model) plus
    the trained model's score alone and, with --cv, as one more calibrated signal."""
    from grader.accuracy.train import evaluate_with_model
    from grader.scoring.calibration import MODEL_SIGNAL
    from grader.scoring.pipeline import check_trained
    from grader.scoring.signals import SIGNALS
    from grader.scoring.trained import TrainedModel, read_meta

    tm = TrainedModel.load(model_dir, threads=settings.thread_count())
    with progress("Embedding") as cb:
        X = signals_for(rows, embedder, cb, second)
    with progress("Scoring") as cb:
        ticks = _ticker(cb, len(rows))
        scores = tm.score([r.reference_answer for r in rows], [r.answer for r in rows], progress=ticks)
    names, X_cal = SIGNALS, X
    if MODEL_SIGNAL in cal.features():  # a calibration fitted with the trained score combines it
        check_trained(cal, cal_path, tm, model_dir)
        names, X_cal = (*SIGNALS, MODEL_SIGNAL), np.hstack([X, np.round(scores, 4)[:, None]])
    result = evaluate(rows, embedder, cal, cv=opts.cv, file=str(opts.file),
                      calibration_name=str(cal_path) if cal_path else "default", X=X_cal, names=names)
    ev = evaluate_with_model(rows, X, cal, scores, opts.cv)
    meta = read_meta(Path(model_dir))
    return {"result": result, "model": tm.name, "trained_on": [f.get("name") for f in meta.get("files", [])],
            **{k: v.model_dump() for k, v in ev.items()}}


def _ticker(cb, total: int) -> Callable[[int], None]:
    done = [0]

    def tick(n: int) -> None:
        done[0] += n
        if cb:
            cb(done[0], total)
    return tick



class CalibrateOptions(BaseModel):
    """What `grader calibrate` was asked."""

    files: list[Path]
    out: Path
    limit: int | None = None
    force: bool = False
    model: Path | None = None


def calibrate_to_file(opts: CalibrateOptions, settings, progress: ProgressFactory = _no_progress):
    """Fit a calibration on graded files (with a trained model's score as one more signal when
    given) and save it to `opts.out`; refuses to overwrite without `force`."""
    from grader.accuracy.fit import calibrate_files
    from grader.embedding import make_embedder, make_second_embedder
    from grader.scoring.calibration import save_calibration

    if opts.out.exists() and not opts.force:
        raise InputError(f"--out: {opts.out} exists (use --force to overwrite)")
    scorer = None
    if opts.model is not None:
        from grader.scoring.trained import TrainedModel

        scorer = TrainedModel.load(opts.model, threads=settings.thread_count())
    with progress("Embedding") as cb:
        cal = calibrate_files(opts.files, make_embedder(settings), limit=opts.limit, progress=cb, scorer=scorer,
                              second=make_second_embedder(settings))
    save_calibration(cal, opts.out)
    return cal
