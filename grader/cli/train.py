"""`grader train`: fine-tune the cross-encoder on graded answers."""

from pathlib import Path
from typing import Optional

import typer

from grader.cli.app import app
from grader.cli.context import console
from grader.cli.progress import progress_bar


@app.command(short_help="Fine-tune a cross-encoder on graded answers.")
def train(
    files: list[Path] = typer.Argument(..., metavar="FILE.jsonl...", help="Human-graded answers (the evaluate format); several are pooled."),
    out: Path = typer.Option(Path("models/grader-ce"), "--out", "-o", metavar="DIR", help="Folder for the trained model (not committed: models/ is ignored)."),
    epochs: int = typer.Option(1, "--epochs", min=1, help="Passes over the training rows (early stopping on held-out questions)."),
    max_rows: Optional[int] = typer.Option(None, "--max-rows", min=1, metavar="N", help="Train on a seeded sample of at most N rows."),
    seed: int = typer.Option(13, "--seed", help="Seed for the split, the sample, the head and the order."),
    held_out_share: float = typer.Option(0.2, "--held-out-share", help="Share of rows held out, as whole questions."),
    max_length: int = typer.Option(256, "--max-length", min=16, max=512, help="Tokens per (reference, answer) pair."),
    batch_size: int = typer.Option(16, "--batch-size", min=1),
    lr: float = typer.Option(1e-4, "--lr", help="Learning rate of the encoder (the new head: 10x)."),
    threads: int = typer.Option(2, "--threads", min=1, help="torch threads (pinned: oversubscription is 10-50x slower)."),
    force: bool = typer.Option(False, "--force", help="Overwrite --out if it holds a model."),
):
    """Fine-tune a cross-encoder (reference answer, answer) -> score on graded answers; save it to --out."""
    from rich.markup import escape

    from grader.accuracy.train import TrainSettings
    from grader.accuracy.train import train as run_training
    from grader.scoring.trained import META_FILE

    st = TrainSettings(epochs=epochs, max_rows=max_rows, seed=seed, held_out_share=held_out_share,
                       max_length=max_length, batch_size=batch_size, lr=lr, head_lr=lr * 10, threads=threads)
    err = console(stderr=True)
    with progress_bar("Training", detail="steps · loss {task.fields[loss]}", loss="—") as bar:
        if bar is None:
            res = run_training(files, out, st, log=lambda msg: err.print(escape(msg), soft_wrap=True), force=force)
        else:
            res = run_training(files, out, st, log=bar.log, force=force,
                               progress=lambda d, t, loss: bar.update(d, t, loss=f"{loss:.3f}"))
    m = res.meta
    err.print(f"trained on {m['train_rows']} rows · {len(m['train_questions'])} questions; held out "
              f"{m['held_out_rows']} rows · {len(m['held_out_questions'])} questions · {m['seconds']:.0f} s")
    err.print(f"Wrote {escape(str(out))} ({META_FILE} says what it was trained on)")
