"""What is said, not which words: subjects, polarity, hedges, misconceptions by meaning and
the bank's graded exemplars, on the real model and the real bank."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from grader.bank import load_bank, load_exemplars, validate_rubrics
from grader.errors import InputError
from grader.models import Subject
from grader.scoring.claims import clauses, segments
from grader.scoring.flags import HEDGED, KEYWORD_LIST, TAUTOLOGY
from grader.text import analyse, clean

ROOT = Path(__file__).resolve().parents[1]
HELDOUT = ROOT / "tests" / "data" / "heldout"
KINDS = {"strong", "paraphrase", "partial", "wrong", "swapped", "hedged"}
PUT_PATCH = [Subject(name="put", terms=["put"]), Subject(name="patch", terms=["patch"])]
PUT_PATCH_QUESTION = "What is the difference between PUT and PATCH?"


def _clauses(text: str):
    return [(c.part.text, c.subject) for c in clauses(analyse(text), PUT_PATCH, PUT_PATCH_QUESTION)]


def test_a_clause_is_about_the_subject_it_names_or_the_one_before():
    got = _clauses("PUT replaces the whole resource and is idempotent, while PATCH is a partial update. "
                   "It is not guaranteed to be idempotent.")
    assert [s for _, s in got] == ["put", "patch", "patch"]
    assert _clauses("Use PUT to replace a document and PATCH to modify fields.")[1][1] == "patch"


def test_a_preposition_opening_the_clause_names_its_topic_and_elsewhere_an_object():
    assert _clauses("With PATCH you send only the fields that change.") == [
        ("With PATCH you send only the fields that change.", "patch")]
    assert _clauses("You update the record with PATCH.") == [("You update the record with PATCH.", None)]
    assert _clauses("For PUT, the whole resource is replaced; with PATCH only some fields change.") == [
        ("For PUT, the whole resource is replaced", "put"), ("with PATCH only some fields change.", "patch")]


def test_a_bare_pair_of_subjects_and_a_contrasted_one_are_not_clauses_of_their_own():
    assert [s for _, s in _clauses("PUT and PATCH are both HTTP methods.")] == ["put"]
    assert [s for _, s in _clauses("Unlike PATCH, PUT replaces everything.")] == ["put"]
    assert [s for _, s in _clauses("The first one sends the whole new version. The latter sends the changed bits.")] \
        == ["put", "patch"]
    # A relative clause after the thing contrasted describes it.
    assert _clauses("PUT replaces everything, unlike PATCH which only changes the fields sent.")[1][1] == "patch"
    assert [s for _, s in _clauses("PUT replaces the resource rather than PATCH.")] == ["put"]
    # By order only where the question compares the two: "the first" of a JWT is its header.
    first = analyse("The first decodes to a little JSON naming the algorithm.")
    algorithms = [Subject(name="hs256", terms=["hs256"]), Subject(name="rs256", terms=["rs256"])]
    assert [c.subject for c in clauses(first, algorithms, "How does JWT authentication work?")] == [None]


def test_hedges_attributions_and_tautologies_are_not_firm_claims():
    def firm(text):
        return [c.firm for c in clauses(analyse(text), PUT_PATCH)]

    assert firm("Maybe PATCH is a partial update.") == [False]
    assert firm("It is either a partial update or the entire resource or idempotent.") == [False]
    # Two separate choices are no chain of guesses.
    assert firm("Whole pages or API responses can be cached by a reverse proxy like Varnish or nginx.") == [True]
    assert firm("It is PUT or PATCH or POST.") == [False]
    assert firm("Some people think PATCH replaces the whole resource; it does not.")[0] is False
    assert not any(firm("PUT is PUT and PATCH is PATCH."))
    assert firm("PATCH might not be idempotent.") == [True]
    # Not knowing is a guess in the first person only: the server not knowing you is a claim.
    assert not any(firm("I honestly don't know, PATCH is a partial update."))
    assert firm("401 is when we don't know who you are.") == [True]
    # A name spelled out says nothing more than the name; spelled out and explained, it does.
    assert firm("An ORM is an object-relational mapper, it does object-relational mapping.") == [False]
    assert firm("MVT stands for Model, View, Template.") == [False]
    assert firm("ORM is object-relational mapping: tables become classes and rows objects.") == [True]
    assert firm("PUT is a partial update that changes only the fields sent.") == [True]


def test_long_sentences_are_read_in_parts_for_meaning():
    parts = segments(analyse("404 Not Found is a server crash, 500 Internal Server Error means the URL "
                             "does not exist, and 429 is for validation errors.")[0])
    assert len(parts) == 3
    assert segments(analyse("PUT and PATCH are both methods, yes.")[0]) == []
    # An aside in brackets is not cut: "(HMAC, e.g. HS256)" is one part of its sentence.
    assert segments(analyse("The signature uses a secret key (HMAC, e.g. HS256) or a private key (RS256, ES256).")[0]) \
        == []


# --------------------------------------------------------------------------- the bank's scorer


def grade(bank, grader_, qid, text):
    return grader_.grade(bank.questions[qid], bank.rubrics[qid], text)


def test_swapped_roles_score_low_and_say_so(bank, grader_):
    r = grade(bank, grader_, "put-vs-patch",
              "PATCH replaces the entire resource: the client sends the full representation and the server "
              "overwrites what it had. PUT is a partial update that changes only the fields sent and leaves "
              "the rest untouched.")
    assert r.score <= 3
    swapped = [m for m in r.misconceptions if m.via in ("swapped", "terms", "meaning")]
    assert swapped and any("PUT replaces the whole resource" in m.name or "PATCH" in m.name for m in swapped)
    assert not any(c.matched and c.via == "terms" for c in r.concepts if c.name.startswith(("PUT", "PATCH")))


def test_a_sentence_stating_a_swapped_claim_shows_no_other_concept(bank, grader_):
    r = grade(bank, grader_, "put-vs-patch",
              "PATCH sends the complete representation and replaces the whole resource, which is why JSON "
              "Merge Patch payloads are large.")
    # Found as the rubric's own misconception (its terms, said of PATCH), so not again as a swap.
    assert [m.name for m in r.misconceptions] == ["PATCH replaces the whole resource"]
    assert not [c.name for c in r.concepts if c.credit > 0]  # not "Payload size and use" from it either


def test_denied_claims_are_misconceptions_not_credit(bank, grader_):
    r = grade(bank, grader_, "put-vs-patch",
              "PUT does not replace the entire resource and it is not idempotent. PATCH does not apply a "
              "partial update either.")
    assert r.score <= 3
    assert any(m.via == "denied" for m in r.misconceptions)
    assert not any(c.via == "terms" for c in r.concepts if c.required)


def _via_terms(result, name):
    return next(c.via == "terms" for c in result.concepts if c.name == name)


def test_a_thing_dismissed_as_not_needed_is_not_credited(bank, grader_):
    ttl = "TTL expiry"
    dismissed = grade(bank, grader_, "cache-invalidation", "A TTL is not needed, the cache updates itself.")
    assert not _via_terms(dismissed, ttl)
    assert _via_terms(grade(bank, grader_, "cache-invalidation", "A TTL is needed as a safety net."), ttl)
    # A new clause ends the dismissal's reach: here the locks are what is not needed.
    assert _via_terms(grade(bank, grader_, "cache-invalidation",
                            "Give every key a TTL so locks are not needed."), ttl)
    lazy = grade(bank, grader_, "n-plus-one", "Lazy loading has nothing to do with it, Django joins everything.")
    assert not _via_terms(lazy, "Caused by lazy loading")


def test_a_denial_governs_its_own_item_of_a_list(bank, grader_):
    # "no" denies the permission, not the 404 after the comma.
    r = grade(bank, grader_, "status-codes", "Use 403 when the user has no permission, 404 when the thing is missing.")
    assert _via_terms(r, "Client errors 400 and 404")
    r = grade(bank, grader_, "status-codes", "Use 403 when the user has no permission, not 404.")
    assert not _via_terms(r, "Client errors 400 and 404")


def test_a_denial_reaches_every_item_of_an_or_list(bank, grader_):
    # The fact the question is about: select_related cannot follow either kind of relation.
    denied = grade(bank, grader_, "select-related-vs-prefetch-related",
                   "select_related works for forward foreign keys, not for reverse foreign keys or many-to-many.")
    stated = grade(bank, grader_, "select-related-vs-prefetch-related",
                   "select_related works for forward foreign keys, for reverse foreign keys and for many-to-many.")
    assert not denied.misconceptions
    assert "select_related for many-to-many" in {m.name for m in stated.misconceptions}


def test_a_wrong_claim_rejected_after_it_or_at_its_subject_costs_nothing(bank, grader_):
    for qid, rejected, stated in [
        ("n-plus-one", "Adding an index won't fix it; the fix is to load the relations with select_related.",
         "Adding an index fixes it, since each extra query gets faster."),
        ("sql-injection", "Escaping quotes by hand isn't the fix; use parameterized queries.",
         "Just escape the quotes by hand and you are safe."),
        ("status-codes", "Bad input is never a 500; send a 400 or a 422.", "Bad input gets a 500."),
        ("flask-django-fastapi", "FastAPI isn't a full-stack framework with a built-in ORM; you bring your own.",
         "FastAPI is fast, and it is batteries-included with a built-in ORM."),
    ]:
        assert not grade(bank, grader_, qid, rejected).misconceptions, rejected
        assert grade(bank, grader_, qid, stated).misconceptions, stated


def test_a_term_the_concept_itself_says_under_a_denial_is_shown_by_one(bank, grader_):
    # The concept says "passwords are never kept in plaintext": so does this answer.
    r = grade(bank, grader_, "password-hashing", "Never store plaintext; store a slow salted hash such as Argon2.")
    assert _via_terms(r, "One-way, never plaintext")
    # A concept stated affirmatively is still denied by a denial: "PUT is not idempotent".
    r = grade(bank, grader_, "put-vs-patch", "PUT is not idempotent.")
    assert not _via_terms(r, "Idempotency")


def test_a_misconception_with_a_subject_counts_only_in_a_clause_about_it(bank, grader_):
    crash = "404 said to be a server failure"
    said = grade(bank, grader_, "status-codes", "A 404 means the server crashed while handling the request.")
    assert crash in [m.name for m in said.misconceptions]
    right = grade(bank, grader_, "status-codes",
                  "404 is for a resource that does not exist, and 500 is for when the server crashed.")
    assert not right.misconceptions


def test_a_claim_term_opening_with_a_subject_is_stated_of_it_by_pronoun(bank, grader_):
    # "fastapi batteries included": "it" in a clause about FastAPI says the same.
    said = grade(bank, grader_, "flask-django-fastapi",
                 "FastAPI is fast because Pydantic does the validation, and it's batteries-included "
                 "with its own ORM and admin.")
    assert ("FastAPI is batteries-included", "terms") in [(m.name, m.via) for m in said.misconceptions]
    # Its clause states one wrong claim, counted once: not also as Django's concept said of FastAPI.
    assert not any(m.via == "swapped" for m in said.misconceptions)
    # Said of Django, the same words are right.
    right = grade(bank, grader_, "flask-django-fastapi",
                  "Django is the big one, and it's batteries-included with its own ORM and admin.")
    assert "FastAPI is batteries-included" not in [m.name for m in right.misconceptions]


def test_a_clause_speaks_of_no_subject_it_contrasts_lists_or_denies(bank, grader_):
    # A contrast reaches past a describing word: "compared with a typical PATCH" is the thing contrasted.
    assert _clauses("Compared with a typical PATCH it sends more data.") == [
        ("Compared with a typical PATCH it sends more data.", None)]
    r = grade(bank, grader_, "docker", "Docker packages the app with its dependencies into an image. "
              "Compared with a full virtual machine a container is far lighter, with no guest OS to boot.")
    assert not [m for m in r.misconceptions if m.via == "swapped"], r.misconceptions
    # "no session store" is said of the JWT, and "that" refers back to it.
    r = grade(bank, grader_, "sessions-vs-jwt", "With a JWT the server checks the signature by itself, with no "
              "session store. That is the stateless part.")
    assert not [m for m in r.misconceptions if m.via == "swapped"], r.misconceptions
    # One clause listing several places names each of them.
    r = grade(bank, grader_, "where-to-cache", "You can cache at the edge with a CDN such as Cloudflare, a reverse "
              "proxy like Varnish, a shared in-memory store such as Redis for computed results, and in the browser.")
    assert not [m for m in r.misconceptions if m.via == "swapped"], r.misconceptions


def test_a_directed_term_is_not_read_backwards(bank, grader_):
    # "one book has many authors" is one-to-many, not the "many to one" that select_related follows.
    r = grade(bank, grader_, "select-related-vs-prefetch-related", "select_related does a JOIN in the same query. "
              "prefetch_related is what you need when one book can have many authors.")
    assert not [m for m in r.misconceptions if m.via == "swapped"], r.misconceptions


def test_a_misconception_put_in_others_mouths_is_not_stated_by_meaning(bank, grader_):
    r = grade(bank, grader_, "put-vs-patch", "Many people treat PUT and PATCH as two names for the same update, "
              "but they differ: PUT replaces the whole resource and PATCH changes only the fields sent.")
    assert not r.misconceptions, r.misconceptions


def test_a_sentence_stating_a_misconception_still_swaps_roles(bank, grader_):
    # The misconception's terms find the logic in the template; the same sentence gives the view
    # the page: both wrong claims count, though the sentence shows no concept.
    r = grade(bank, grader_, "django-mvt",
              "In Django's MVT the View is the HTML page the user sees and the Template is where the Python "
              "logic that handles the request and queries the database lives.")
    via = {m.via: m.name for m in r.misconceptions}
    assert "terms" in via and "swapped" in via
    # The template clause's wrong claim counts once; the view clause's is the swap.
    assert "said of view" in via["swapped"] and len(r.misconceptions) == 2
    assert not any(c.via == "terms" for c in r.concepts)


def test_a_key_said_of_the_right_algorithm_is_no_misconception(bank, grader_):
    hs = "HS256 uses a public/private key pair"
    right = grade(bank, grader_, "how-jwt-works",
                  "The server signs the token with a secret (HS256) or a private key (RS256), and verifies "
                  "the signature on every request.")
    assert hs not in [m.name for m in right.misconceptions]
    # A subject in brackets names the piece it closes, however far in.
    right = grade(bank, grader_, "how-jwt-works",
                  "The server recomputes the signature with its secret (HS256) or checks it with the public key "
                  "(RS256) and checks exp.")
    assert hs not in [m.name for m in right.misconceptions]
    wrong = grade(bank, grader_, "how-jwt-works", "HS256 signs the token with a private key and verifies it with a public key.")
    assert hs in [m.name for m in wrong.misconceptions]


def test_wrong_meanings_for_the_right_codes_score_low(bank, grader_):
    """The issue's first example: every code named, each given another code's meaning."""
    r = grade(bank, grader_, "status-codes",
              "200 OK is for success. 201 Created is what you return after a DELETE. 401 Unauthorized means "
              "the user is logged in but lacks permission, and 403 Forbidden means the user isn't logged in. "
              "404 Not Found is a server crash, 500 Internal Server Error means the URL doesn't exist, and "
              "429 Too Many Requests is for validation errors.")
    assert r.score <= 3
    names = {m.name for m in r.misconceptions}
    assert {"201 for a read or a delete", "500 said to mean not found", "429 said to be for invalid input"} <= names


def test_a_misconceptions_subject_must_be_one_of_the_rubrics(tmp_path):
    from grader.bank import load_rubric

    p = tmp_path / "q.toml"
    p.write_text('question_id = "q"\n[[subjects]]\nname = "put"\nterms = ["put"]\n[[concepts]]\nname = "c"\n'
                 'description = "d"\nterms = ["t"]\nhint = "h"\n[[misconceptions]]\nname = "m"\nterms = ["x"]\n'
                 'why = "w"\nsubject = "post"\n')
    with pytest.raises(InputError, match=r"misconceptions\[0\]\.subject"):
        load_rubric(p)


def test_a_misconception_the_answer_rejects_is_neither_listed_nor_penalised(bank, grader_):
    base = ("PUT replaces the whole resource with the representation sent, and it is idempotent. PATCH is a "
            "partial update that only changes the fields sent.")
    plain = grade(bank, grader_, "put-vs-patch", base)
    rejecting = grade(bank, grader_, "put-vs-patch",
                      base + " Some people think PATCH replaces the whole resource; it does not.")
    assert not rejecting.misconceptions
    assert rejecting.score >= plain.score - 0.5


def test_a_hedged_list_earns_nothing_and_is_flagged(bank, grader_):
    r = grade(bank, grader_, "put-vs-patch",
              "I honestly don't know. Maybe it's a partial update, or the entire resource, or idempotent, "
              "something like that.")
    assert r.score <= 3
    assert HEDGED in r.flags
    assert not any(c.via == "terms" for c in r.concepts)


def test_a_keyword_list_says_nothing_of_a_subject_it_does_not_name(bank, grader_):
    # Which of the two things compared has which property is the question; a bare run of
    # terms does not say, so it earns no concept about either, while naming them does.
    bare = grade(bank, grader_, "put-vs-patch", "whole resource, full replacement, partially, specific fields, "
                 "idempotency, json merge patch")
    named = grade(bank, grader_, "put-vs-patch", "PUT: whole resource, full replacement, idempotency; "
                  "PATCH: partially, specific fields, json merge patch")
    swapped = grade(bank, grader_, "put-vs-patch", "PATCH: whole resource, full replacement, idempotency; "
                    "PUT: partially, specific fields, json merge patch")
    about = {"PUT replaces the whole resource", "PATCH is a partial update"}
    assert all(KEYWORD_LIST in r.flags for r in (bare, named, swapped))
    assert not [c.name for c in bare.concepts if c.name in about and c.credit > 0]
    assert all(c.credit == 1.0 for c in named.concepts if c.name in about)
    assert {m.via for m in swapped.misconceptions} == {"swapped"}
    assert swapped.score < bare.score < named.score


def test_a_tautology_earns_nothing_and_is_flagged(bank, grader_):
    r = grade(bank, grader_, "put-vs-patch", "PUT is PUT and PATCH is PATCH.")
    assert r.score <= 3 and TAUTOLOGY in r.flags
    r = grade(bank, grader_, "orm", "An ORM is an object-relational mapper, it does object-relational mapping.")
    assert r.score <= 3 and TAUTOLOGY in r.flags


def _effects(r) -> dict[str, float]:
    return {c.signal: c.effect for c in r.components.contributions}


def test_guesses_and_wrong_statements_earn_nothing_by_likeness(bank, grader_):
    """Likeness to the model answer counts only for the words the answer firmly and rightly claims."""
    firm = grade(bank, grader_, "database-indexes",
                 "An index is a sorted structure, usually a B-tree, that lets the database find rows without "
                 "scanning the whole table. Every insert and update must also update the index.")
    guessed = grade(bank, grader_, "database-indexes",
                    "Maybe an index is some kind of sorted structure, perhaps a B-tree, that lets the database find "
                    "rows without scanning the table? I am not sure, maybe inserts get slower, or something like that.")
    assert "claimed" not in _effects(firm)
    e = _effects(guessed)
    assert e["claimed"] == pytest.approx(-e["semantic"], abs=1e-3)  # every word of it is a guess
    assert guessed.score < 1 < firm.score - 5
    # A wrong statement in the right words: its sentence's likeness is taken back too.
    wrong = grade(bank, grader_, "cache-invalidation",
                  "Honestly you never have to invalidate anything. Just set the TTL to infinity and the cache "
                  "keeps itself up to date on its own.")
    assert wrong.misconceptions and _effects(wrong).get("claimed", 0.0) < 0


def test_rejecting_a_misconception_costs_no_likeness(bank, grader_):
    r = grade(bank, grader_, "put-vs-patch",
              "PUT replaces the whole resource. Some people think PATCH replaces the whole resource; it does not, "
              "it is a partial update.")
    assert "claimed" not in _effects(r) and not r.misconceptions


def test_misconceptions_are_found_by_meaning_unless_denied(bank, grader_):
    rubric = bank.rubrics["cache-invalidation"]
    stated = [m for m in rubric.misconceptions if m.statements]
    assert stated
    wrong = grade(bank, grader_, "cache-invalidation",
                  "Honestly you never have to invalidate anything. Just set the TTL to infinity and the cache "
                  "keeps itself up to date on its own.")
    assert wrong.misconceptions and wrong.score <= 3
    assert any(m.via in ("meaning", "terms") for m in wrong.misconceptions)
    right = grade(bank, grader_, "cache-invalidation",
                  "It is not true that you can set the TTL to infinity and forget about it: stale data would "
                  "be served forever.")
    assert not any(m.via == "meaning" for m in right.misconceptions)


def test_a_concept_shown_only_by_meaning_is_partial_and_one_sentence_lends_meaning_to_few(bank, grader_):
    r = grade(bank, grader_, "sessions-vs-jwt",
              "Sessions live on the server, JWT is a signed token the client sends each time.")
    by_meaning = [c for c in r.concepts if c.via == "semantic"]
    assert all(c.credit < 1 for c in by_meaning)
    from collections import Counter

    per_sentence = Counter(c.evidence for c in by_meaning)
    assert all(n <= 2 for n in per_sentence.values())  # two clauses, one concept each at most
    assert r.score < 6


def test_a_part_of_a_long_sentence_lends_its_meaning(bank, grader_):
    # As one vector the whole sentence sits far from the mapping concept; its first part says it.
    r = grade(bank, grader_, "orm",
              "It is a library that lets you treat the rows of your tables as ordinary objects in your programming "
              "language, so you call methods on them and never write the query text by hand.")
    mapping = next(c for c in r.concepts if c.name.startswith("Maps tables"))
    assert mapping.via == "semantic" and 0 < mapping.credit < 1


def test_what_a_sentence_shows_by_its_terms_counts_against_what_it_lends_by_meaning(bank, grader_):
    # Two clauses, two concepts by their terms: nothing left over for slower writes or storage.
    r = grade(bank, grader_, "database-indexes",
              "An index makes lookups faster because the database skips the full table scan, it walks a B-tree "
              "instead.")
    assert sum(c.via == "terms" for c in r.concepts) == 2
    assert not [c.name for c in r.concepts if c.via == "semantic"]


def test_the_required_cap_needs_the_concept_absent_by_meaning_too(bank, grader_):
    from grader.scoring.combine import misses_required

    r = grade(bank, grader_, "put-vs-patch", bank.questions["put-vs-patch"].model_answer)
    assert not misses_required(r.concepts)
    absent = [c.model_copy(update={"credit": 0.0, "matched": False, "via": "none"}) if c.required else c
              for c in r.concepts]
    assert misses_required(absent)
    partial = [c.model_copy(update={"credit": 0.5, "matched": True, "via": "semantic"}) if c.required else c
               for c in r.concepts]
    assert not misses_required(partial)


# --------------------------------------------------------------------------- exemplars


def test_every_bank_question_ships_graded_exemplars_of_every_kind(bank):
    for qid, rubric in bank.rubrics.items():
        kinds = {e.kind for e in rubric.exemplars}
        assert len(rubric.exemplars) >= 8, qid
        assert {"strong", "other-words", "partial", "wrong-right-words", "off-topic"} <= kinds, (qid, kinds)
        assert kinds & {"swapped", "other"}, qid
        assert all(e.score <= rubric.points and e.reason.strip() for e in rubric.exemplars)
        assert len(rubric.misconceptions) >= 5, qid


def test_rubric_validate_accepts_the_bank_and_names_a_bad_exemplar(tmp_path):
    assert not [p for p in validate_rubrics(ROOT / "questions.json", ROOT / "rubrics") if p.severity == "error"]
    bad = tmp_path / "x.exemplars.toml"
    bad.write_text('question_id = "x"\n[[exemplars]]\nkind = "brilliant"\nscore = 3\nreason = "r"\nanswer = "a"\n')
    with pytest.raises(InputError, match=r"x\.exemplars\.toml: exemplars\.0\.kind"):
        load_exemplars(bad)
    rubrics = tmp_path / "rubrics"
    rubrics.mkdir()
    for p in (ROOT / "rubrics").glob("*.toml"):
        (rubrics / p.name).write_bytes(p.read_bytes())
    over = rubrics / "docker.exemplars.toml"
    over.write_text(over.read_text().replace("score = 0", "score = 11", 1))
    problems = [p for p in validate_rubrics(ROOT / "questions.json", rubrics) if p.severity == "error"]
    assert len(problems) == 1 and problems[0].file.endswith("docker.exemplars.toml")
    assert "score" in problems[0].field and "above" in problems[0].message


def test_the_nearest_exemplar_is_shown_and_pulls_the_score(bank, grader_):
    rubric = bank.rubrics["put-vs-patch"]
    low = min(rubric.exemplars, key=lambda e: e.score)
    r = grade(bank, grader_, "put-vs-patch", low.answer)
    n = r.nearest_graded
    assert n is not None and n.source == "exemplar"
    assert n.score == low.score and n.similarity > 0.99 and n.reason == low.reason
    pulled = [c for c in r.components.contributions if c.signal == "exemplar"]
    assert pulled and pulled[0].effect <= 0
    without = grader_.grade(bank.questions["put-vs-patch"], rubric.model_copy(update={"exemplars": []}), low.answer)
    assert without.nearest_graded is None
    assert r.score <= without.score


def _credit(result, name):
    return next(c.credit for c in result.concepts if c.name == name)


def test_plain_words_exemplars_lend_their_sentences_to_the_concept_they_say(bank, grader_):
    q = bank.questions["select-related-vs-prefetch-related"]
    rubric = bank.rubrics[q.id]
    bare = rubric.model_copy(update={"exemplars": []})
    join = "select_related uses a SQL JOIN"
    said = "select_related has the database hand back the linked author inside each book row, in the very same round trip."
    assert _credit(grader_.grade(q, rubric, said), join) > _credit(grader_.grade(q, bare, said), join) + 0.05
    # Said of both things compared, the same words are no evidence for what one of them does.
    both = said.replace("select_related has", "select_related and prefetch_related have")
    assert _credit(grader_.grade(q, rubric, both), join) == _credit(grader_.grade(q, bare, both), join)


# --------------------------------------------------------------------------- the held-out set


def _heldout():
    rows = []
    for f in sorted(HELDOUT.glob("*.jsonl")):
        for line in f.read_text().splitlines():
            if line.strip():
                rows.append(json.loads(line))
    return rows


def test_the_held_out_set_covers_every_question_and_shares_no_text_with_the_exemplars(bank):
    rows = _heldout()
    for qid in bank.questions:
        kinds = [r["kind"] for r in rows if r["question_id"] == qid]
        assert len(kinds) >= 6 and set(kinds) == KINDS, qid
    exemplar_texts = {clean(e.answer).lower() for r in bank.rubrics.values() for e in r.exemplars}
    assert not [r for r in rows if clean(r["answer"]).lower() in exemplar_texts]
    examples = ROOT.parent / "shared" / "examples" / "new-user-answers.jsonl"
    if examples.exists():
        seen = {clean(json.loads(x)["answer"]).lower() for x in examples.read_text().splitlines() if x.strip()}
        assert not [r for r in rows if clean(r["answer"]).lower() in seen]


def test_the_held_out_answers_stay_at_least_where_they_were_measured(bank, grader_):
    """Floors one answer under the levels measured in docs/accuracy.md (not yet the issue's
    targets, which the plain-words answers miss; one answer of slack so that a last-digit
    difference in the vectors cannot flip the test): the scorer must not lose what it gained."""
    from grader.scoring import Item

    rows = _heldout()
    results = grader_.grade_many([Item(bank.questions[r["question_id"]], bank.rubrics[r["question_id"]],
                                       r["answer"]) for r in rows])
    inside = {k: 0 for k in KINDS}
    means: dict[str, dict[str, list[float]]] = {}
    targets = {"strong": (8, 10), "paraphrase": (7, 10), "partial": (3, 7), "wrong": (0, 3),
               "swapped": (0, 3), "hedged": (0, 3)}
    for r, res in zip(rows, results):
        lo, hi = targets[r["kind"]]
        inside[r["kind"]] += lo <= res.score <= hi
        means.setdefault(r["question_id"], {}).setdefault(r["kind"], []).append(res.score)
    floors = {"strong": 46, "paraphrase": 8, "partial": 19, "wrong": 19, "swapped": 18, "hedged": 21}
    assert all(inside[k] >= floors[k] for k in floors), inside

    def mean(xs):
        return sum(xs) / len(xs)

    ordered = [q for q, k in means.items()
               if mean(k["strong"]) > mean(k["partial"]) > max(mean(k["wrong"]), mean(k["swapped"]))]
    assert len(ordered) >= 20, sorted(set(means) - set(ordered))


# --------------------------------------------------------------------------- right answers, six styles


def test_right_answers_in_six_styles_stay_where_they_were_measured(bank, grader_):
    """tests/data/right-answers.jsonl: six correct answers per bank question (dense, plain words,
    contrasts and denials, a misconception named to reject it, a worked example, casual speech),
    written from the questions and model answers alone. A development set for precision: the
    rules found with it are in docs/experiments.md. Floors one answer under what was measured."""
    from grader.scoring import Item

    rows = [json.loads(x) for x in (ROOT / "tests" / "data" / "right-answers.jsonl").read_text().splitlines() if x.strip()]
    assert len(rows) == 6 * len(bank.questions)
    results = grader_.grade_many([Item(bank.questions[r["question_id"]], bank.rubrics[r["question_id"]], r["answer"])
                                  for r in rows])
    convicted = [(r["question_id"], r["style"], [m.name for m in res.misconceptions])
                 for r, res in zip(rows, results) if res.misconceptions]
    assert len(convicted) <= 6, convicted
    assert sum(res.score >= 8 for res in results) >= 112

