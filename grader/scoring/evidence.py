"""What a scorer returns for one answer, and the protocol every scorer follows."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

import numpy as np
from pydantic import BaseModel, Field

from grader.models import ConceptResult, MisconceptionResult, NearestGraded, Signal
from grader.scoring.prepare import Prepared


class Evidence(BaseModel):
    """One scorer's findings for one answer: named signals with explanations, and (for the
    rubric) the concepts and misconceptions with the sentences that show them."""

    signals: list[Signal] = Field(default_factory=list)
    concepts: list[ConceptResult] = Field(default_factory=list)
    misconceptions: list[MisconceptionResult] = Field(default_factory=list)
    flags: list[str] = Field(default_factory=list)
    nearest: NearestGraded | None = None

    def value(self, name: str, default: float = float("nan")) -> float:
        """The named signal's value, or `default`."""
        return next((s.value for s in self.signals if s.name == name), default)

    def merged(self, other: "Evidence") -> "Evidence":
        """This evidence and another's, side by side."""
        return Evidence(
            signals=self.signals + other.signals, concepts=self.concepts + other.concepts,
            misconceptions=self.misconceptions + other.misconceptions,
            flags=self.flags + [f for f in other.flags if f not in self.flags],
            nearest=other.nearest or self.nearest,
        )


class Scorer(Protocol):
    """A source of evidence.  `texts` names what it needs embedded by the grader's embedder
    (embedded once for all scorers); `score` returns one Evidence per answer, in order."""

    name: str

    def texts(self, p: Prepared) -> list[str]: ...

    def score(self, answers: Sequence[Prepared], vectors: Mapping[str, np.ndarray]) -> list[Evidence]: ...
