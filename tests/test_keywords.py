"""Concept and misconception matching on real rubric-style terms."""

from grader.scoring.keywords import find_terms
from grader.text import analyse, split_sentences, stem


def hit(terms, text, **kw):
    return find_terms(terms, analyse(text), **kw)


def test_case_and_punctuation_insensitive():
    assert hit(["idempotent"], "PUT is IDEMPOTENT!!")
    assert hit(["json web token"], "It's a JSON-Web-Token.")


def test_inflections():
    assert stem("hashing") == stem("hash") == stem("hashes") == stem("hashed")
    assert stem("indices") == stem("index") == stem("indexes")
    assert hit(["hash"], "We store salted hashes with bcrypt.")
    assert hit(["index"], "Indices make lookups faster.")
    assert hit(["replace entire resource"], "PUT replaced the entire resource.")


def test_phrase_words_close_together_any_order():
    assert hit(["replace entire resource"], "the entire stored resource is replaced by PUT")
    # Words far apart in one sentence do not make the phrase.
    far = "Replace your habits; this long sentence goes on and on about many things until entire days pass for a resource."
    assert not hit(["replace entire resource"], far)
    # Words split over two sentences do not make the phrase.
    assert not hit(["partial update"], "It is partial. Update later.")


def test_small_typos_tolerated_in_long_words_only():
    assert hit(["idempotent"], "PUT is idempotant")
    assert hit(["transaction"], "wrap it in a transacton")
    assert not hit(["jwt"], "use jwk")  # short words must match exactly
    assert not hit(["insert"], "invert the list")  # six letters: too short to bend
    assert not hit(["transaction"], "a fransaction")  # first letter differs


def test_a_shorter_relative_of_a_word_is_no_typo_of_it():
    # Stems one letter apart because one extends the other are different words.
    assert not hit(["productivity"], "it can produce slow queries")
    assert hit(["productivity"], "a boost in productivty")
    assert hit(["serialization"], "the serialisation format")


def test_a_short_stem_does_not_bend_as_far_as_its_long_word():
    # "intent" and "ident", "repeat" and "relat": two edits in a six-letter stem are other words.
    assert not hit(["intentionally"], "the output is identical")
    assert not hit(["repeatable read"], "the related rows are read")
    assert hit(["intentionally"], "it was done intentionaly")


def test_a_two_word_claim_is_stated_in_the_passive_too():
    assert hit(["decrypt the hash"], "At login the salted hash is decrypted again.", claims=True)
    assert not hit(["decrypt the hash"], "The hash that decrypted nothing.", claims=True)
    assert not hit(["decrypt the hash"], "The hash is never decrypted.", claims=True)


def test_negated_misconception_is_not_claimed():
    terms = ["patch replace whole"]
    assert hit(terms, "PATCH replaces the whole resource.", claims=True)
    assert not hit(terms, "PATCH does not replace the whole resource.", claims=True)
    assert not hit(terms, "PATCH doesn't replace the whole resource.", claims=True)
    assert not hit(terms, "It is wrong to say PATCH replaces the whole resource.", claims=True)
    assert not hit(terms, "PATCH never replaces the whole resource.", claims=True)


def test_misconception_words_must_come_in_order():
    terms = ["patch replace whole"]
    assert not hit(terms, "Use PUT to replace a whole document and PATCH to modify one field.", claims=True)


def test_evidence_is_the_sentence():
    h = hit(["stateless"], "REST uses URLs. Each request is stateless. Done.")
    assert h.sentence.text == "Each request is stateless."


def test_sentences_and_bullets():
    assert split_sentences("One. Two!\n- three\n* four") == ["One.", "Two!", "three", "four"]
    # An abbreviation's full stop ends no sentence; a real full stop after it still does.
    assert split_sentences("Signed with a secret (e.g. HS256). Sent as a Bearer token, i.e. in a header.") == [
        "Signed with a secret (e.g. HS256).", "Sent as a Bearer token, i.e. in a header."]


def test_zero_width_and_fullwidth_do_not_hide_words():
    assert hit(["idempotent"], "PUT is idem\u200bpotent")
    assert hit(["idempotent"], "PUT is ｉｄｅｍｐｏｔｅｎｔ")


def test_pathological_repetition_is_bounded():
    text = " ".join(["replace"] * 3000 + ["entire"] * 3000)
    assert hit(["replace entire resource"], text) is None


def test_answers_in_another_language_are_flagged_not_read_as_keyword_lists():
    from grader.scoring import flags as F

    spanish = ("PUT reemplaza el recurso completo con la representación enviada y los campos que faltan se "
               "pierden, mientras que PATCH solo cambia los campos que envías.")
    german = "Der Server speichert die Sitzung, während das JWT ein signiertes Token ist, das der Client mitschickt."
    for text in (spanish, german):
        assert F.answer_flags(text) == [F.NOT_ENGLISH], text
    # Lists of English terms and identifiers look foreign to a language identifier; they are not.
    for text in ("1. Gaussian function 2. Multi Quadrics 3. Inverse Multiquadrics 4. Thin plate splines",
                 "select_related JOIN, prefetch_related separate query for each relation, joined in Python",
                 "partial update, idempotent, entire resource, overwrite, json patch, missing fields"):
        assert F.NOT_ENGLISH not in F.answer_flags(text), text
    assert F.KEYWORD_LIST in F.answer_flags("partial update, idempotent, entire resource, overwrite, json patch, "
                                            "missing fields")


def test_a_claim_of_what_a_thing_is_needs_the_verb():
    assert not hit(["post is idempotent"], "Resending a POST needs an idempotency key.", claims=True)
    assert hit(["post is idempotent"], "A POST is always idempotent.", claims=True)
    assert hit(["post requests are idempotent"], "POST requests, like GET ones, are idempotent.", claims=True)
    # Terms without the verb are phrases, found as before.
    assert hit(["idempotency key"], "Resending a POST needs an idempotency key.", claims=True)
