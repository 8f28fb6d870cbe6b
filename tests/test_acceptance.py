"""The bank's acceptance bar, over every question: model answer, paraphrase, wrong answer, empty."""

import json

import pytest

from conftest import DATA
from grader.scoring import Item

PARAPHRASES = json.loads((DATA / "paraphrases.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def ids(bank):
    return list(bank.questions)


def test_every_question_has_a_paraphrase(bank):
    assert set(PARAPHRASES) == set(bank.questions)


def test_model_answer_scores_at_least_9(bank, grader_):
    items = [Item(q, bank.rubrics[q.id], q.model_answer) for q in bank.questions.values()]
    low = {it.question.id: r.score for it, r in zip(items, grader_.grade_many(items)) if r.score < 9}
    assert not low


def test_paraphrase_scores_at_least_7(bank, grader_):
    items = [Item(q, bank.rubrics[q.id], PARAPHRASES[q.id]) for q in bank.questions.values()]
    low = {it.question.id: r.score for it, r in zip(items, grader_.grade_many(items)) if r.score < 7}
    assert not low


def test_other_questions_model_answers_score_at_most_3(bank, grader_):
    qs = list(bank.questions.values())
    items = [
        Item(q, bank.rubrics[q.id], other.model_answer)
        for q in qs for other in qs if other.id != q.id
    ]
    results = grader_.grade_many(items)
    high = {
        f"{it.question.id} <- {it.answer[:30]}": r.score
        for it, r in zip(items, results) if r.score > 3
    }
    assert not high


@pytest.mark.parametrize("blank", ["", "   ", "\n\t \n"])
def test_empty_answer_scores_0(bank, grader_, blank):
    for q in bank.questions.values():
        r = grader_.grade(q, bank.rubrics[q.id], blank)
        assert r.score == 0 and r.band == "no answer"


def test_scores_are_deterministic(bank, grader_):
    q = bank.get("put-vs-patch")
    a = PARAPHRASES[q.id]
    first = grader_.grade(q, bank.rubrics[q.id], a).model_dump_json()
    # Graded alone and inside a batch of other texts: same bytes.
    batch = grader_.grade_many([Item(x, bank.rubrics[x.id], x.model_answer) for x in bank.questions.values()]
                               + [Item(q, bank.rubrics[q.id], a)])
    assert batch[-1].model_dump_json() == first
