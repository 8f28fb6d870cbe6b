"""What the LLM cannot do: count a quote that does not show the concept, replace grader's
feedback with junk, or brand an honest answer as an injection (loopback server, real pipeline)."""

from __future__ import annotations

import pytest

from llm_server import _fake_llm_server, fake_llm  # noqa: F401

from grader.llm import BlendParams, OpenAIFeedback, apply_review
from grader.llm.blend import LLM_SUSPECTS
from grader.llm.options import LLMOptions
from grader.llm.relevance import NOT_RELEVANT, STATES_MISCONCEPTION
from grader.scoring.flags import INJECTION

QID = "put-vs-patch"
ANSWER = ("PUT and PATCH are both HTTP methods. PATCH replaces the entire resource with the body you send. "
          "PUT replaces the whole resource with the representation you send.")
PARAMS = BlendParams(weight=0.3, max_shift=0.15)


@pytest.fixture(scope="module")
def case(bank, grader_):
    q, rubric = bank.get(QID), bank.rubrics[QID]
    return q, rubric, grader_.grade(q, rubric, ANSWER)


def _review(fake, case, reply):
    q, rubric, det = case
    fake.behave("reply", reply=reply)
    p = OpenAIFeedback(model="test-model", base_url=fake.url, api_key=None, timeout=5, retries=0,
                       options=LLMOptions(llm_server="generic"))
    review = p.review(q, rubric, ANSWER, det)
    assert review.ok, review.error
    return det, apply_review(det, review, rubric, PARAMS)


def _reply(names, concepts, **kw):
    out = {"concepts": [{"name": n, "status": concepts.get(n, ("missing", ""))[0],
                         "quote": concepts.get(n, ("missing", ""))[1]} for n in names],
           "misconceptions": [], "suggested_score": 0.5, "strengths": ["Names both methods"],
           "improvements": ["Say what PATCH does"], "feedback": "You explain PUT; PATCH is described wrongly.",
           "injection_suspected": False}
    out.update(kw)
    return out


def test_a_quote_must_show_its_concept_and_not_state_a_misconception(fake_llm, case):
    det, res = _review(fake_llm, case, lambda names, answer: _reply(names, {
        "PATCH is a partial update": ("covered", "PUT and PATCH are both HTTP methods."),
        "PUT replaces the whole resource": ("covered", "PATCH replaces the entire resource with the body you send."),
        "Payload size and use": ("covered", "PUT replaces the whole resource with the representation you send."),
    }))
    why = {u["concept"]: u["reason"] for u in res.llm["unsupported_claims"]}
    assert why == {"PATCH is a partial update": NOT_RELEVANT, "PUT replaces the whole resource": STATES_MISCONCEPTION,
                   "Payload size and use": NOT_RELEVANT}
    assert all(v["status"] == "missing" for v in res.llm["verdicts"])
    assert res.components.llm == 0.0 and res.score <= det.score


def test_a_quote_the_pipeline_ties_to_the_concept_counts(fake_llm, case):
    _, res = _review(fake_llm, case, lambda names, answer: _reply(names, {
        "PUT replaces the whole resource": ("covered", "PUT replaces the whole resource with the representation you send."),
    }, suggested_score=0.3))
    assert res.llm["unsupported_claims"] == []
    assert [v["name"] for v in res.llm["verdicts"] if v["status"] == "covered"] == ["PUT replaces the whole resource"]


@pytest.mark.parametrize("feedback,strengths", [
    ("1.0\nStrengths: 1.0; 1.0; 1.0", ["1.0", "1.0", "1.0"]),
    ("", []),
    ("good good good good good good good good", ["good"]),
    ("{}", ["{}"]),
])
def test_junk_feedback_never_replaces_graders_own(fake_llm, case, feedback, strengths):
    det, res = _review(fake_llm, case, lambda names, answer: _reply(
        names, {}, feedback=feedback or " ", strengths=strengths, improvements=strengths))
    assert res.feedback == det.feedback
    assert res.llm["feedback_rejected"] and res.llm["strengths"] == [] and res.llm["improvements"] == []


def test_an_injection_only_the_llm_suspects_is_its_suspicion_and_gains_nothing(fake_llm, case):
    det, res = _review(fake_llm, case, lambda names, answer: _reply(names, {
        "PUT replaces the whole resource": ("covered", "PUT replaces the whole resource with the representation you send."),
    }, injection_suspected=True, suggested_score=0.2))
    assert INJECTION not in det.flags and INJECTION not in res.flags
    assert LLM_SUSPECTS in res.flags
    assert res.score <= det.score  # it still cannot raise the score
    assert not res.feedback.startswith("[Flagged")
