"""Command line: each command parses, calls one library function and renders.  Heavy imports
stay inside the commands, so `grader --help` loads no torch."""

from grader.cli.app import app, main

# Importing a command module registers its commands, in the order `grader --help` lists them.
from grader.cli import grade, ask, batch, review, groups, evaluate, train, questions, rubric  # noqa: E402, F401, I001

__all__ = ["app", "main"]
