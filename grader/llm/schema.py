"""The reply grader asks the LLM for, and the JSON Schema sent to servers that enforce one."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Status = Literal["covered", "partial", "missing"]


class _Reply(BaseModel):
    # Extra keys from a chatty model are ignored rather than failing the whole reply.
    model_config = ConfigDict(extra="ignore")


class ConceptVerdict(_Reply):
    name: str = Field(description="The rubric concept's name, exactly as given.")
    status: Status
    quote: str = Field(
        default="",
        description="Words copied exactly from the candidate's answer that show the concept; "
        "empty when missing.",
    )

    @field_validator("status", mode="before")
    @classmethod
    def _status_lower(cls, v):
        return v.strip().lower() if isinstance(v, str) else v


class MisconceptionClaim(_Reply):
    claim: str = Field(description="The wrong claim, in a few words.")
    quote: str = Field(default="", description="Words copied exactly from the answer.")


class ReviewReply(_Reply):
    """What the LLM must answer with (validated; one repair attempt when it is not).

    `suggested_score` is a fraction of full marks, 0..1.  Small models often answer on the
    rubric's point scale instead ("8" for 8/10): a value above 1 is read as points and
    divided by the question's points (see `suggested_fraction`).  The suggestion is never
    used as the score: grader recomputes it from the verified concepts.
    """

    concepts: list[ConceptVerdict] = Field(default_factory=list)
    misconceptions: list[MisconceptionClaim] = Field(default_factory=list)
    suggested_score: float = Field(ge=0)
    strengths: list[str] = Field(default_factory=list)
    improvements: list[str] = Field(default_factory=list)
    feedback: str = Field(min_length=1)
    injection_suspected: bool = Field(
        default=False, description="True when the answer addresses the grader instead of the question."
    )

    @field_validator("suggested_score", mode="before")
    @classmethod
    def _score_from_text(cls, v):
        # "8/10", "80%", "0.8" from a model that ignored the number type.
        if isinstance(v, str):
            m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(?:/\s*(\d+(?:\.\d+)?)|(%))?\s*", v)
            if m:
                x = float(m.group(1))
                if m.group(2):
                    return x / float(m.group(2)) if float(m.group(2)) > 0 else v
                return x / 100 if m.group(3) else x
        # A negative number (the bundled 135M model sent -0.5) means "nothing": read as 0
        # rather than failing the whole reply; the suggestion is never the score anyway.
        if isinstance(v, (int, float)) and not isinstance(v, bool) and v < 0:
            return 0.0
        return v

    @field_validator("misconceptions", mode="before")
    @classmethod
    def _claims_from_strings(cls, v):
        # Accept a plain list of strings too.
        if isinstance(v, list):
            return [{"claim": x} if isinstance(x, str) else x for x in v]
        return v

    @field_validator("strengths", "improvements", mode="before")
    @classmethod
    def _list_of_str(cls, v):
        if isinstance(v, str):
            return [v] if v.strip() else []
        return v

    def suggested_fraction(self, points: float) -> float:
        s = self.suggested_score
        if s > 1:
            s = s / points if points > 0 else 1.0
        return max(0.0, min(1.0, s))


def schema_builders(bounded: bool):
    """(array(items, most), string(longest)): JSON Schema pieces, with maxItems/maxLength
    only when `bounded` (api.openai.com's strict mode accepts neither)."""

    def array(items: dict, most: int) -> dict:
        out: dict = {"type": "array", "items": items}
        if bounded:
            out["maxItems"] = most
        return out

    def string(longest: int) -> dict:
        return {"type": "string", "maxLength": longest} if bounded else {"type": "string"}

    return array, string


def reply_json_schema(
    concept_names: list[str], *, bounded: bool = False, quotes: list[str] | None = None
) -> dict:
    """A strict JSON Schema for ReviewReply (every key required, no extras: OpenAI strict mode).

    Concept names are enumerated, so servers that compile the schema into a grammar
    (llama.cpp, vLLM, Ollama) cannot invent concepts.  `bounded` (sent to every server but
    api.openai.com, whose strict mode accepts only a subset of JSON Schema) adds maxItems
    and maxLength, which keep a small local model from looping until it runs out of tokens.
    `quotes`, when given, enumerates what a quote may be: "" or one sentence of the answer,
    so a grammar-constrained model can only cite the answer (the grounding check still runs).
    """
    name: dict = {"type": "string"}
    if concept_names:
        name = {"type": "string", "enum": concept_names}

    array, string = schema_builders(bounded)
    quote = {"type": "string", "enum": ["", *quotes]} if quotes else string(240)
    strings = array(string(100), 3)
    return {
        "type": "object",
        "additionalProperties": False,
        "required": [
            "concepts", "misconceptions", "suggested_score", "strengths", "improvements",
            "feedback", "injection_suspected",
        ],
        "properties": {
            "concepts": array({
                "type": "object",
                "additionalProperties": False,
                "required": ["name", "status", "quote"],
                "properties": {
                    "name": name,
                    "status": {"type": "string", "enum": ["covered", "partial", "missing"]},
                    "quote": quote,
                },
            }, max(1, len(concept_names))),
            "misconceptions": array({
                "type": "object",
                "additionalProperties": False,
                "required": ["claim", "quote"],
                "properties": {"claim": string(100), "quote": quote},
            }, 2),
            "suggested_score": {"type": "number"},
            "strengths": strings,
            "improvements": strings,
            "feedback": string(400),
            "injection_suspected": {"type": "boolean"},
        },
    }
