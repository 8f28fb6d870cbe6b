"""Hostile input: every bad file gets one line naming the file and line or field (exit 2),
or is graded correctly.  The corpus is generated into temporary folders (no binary junk in
the repository); the bulk is checked in-process, a representative subset as real processes.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import os
import re
import subprocess
import threading
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest

from conftest import ROOT, grader_cmd

HEADER = "candidate,question_id,answer\n"
DOCKER = ("Docker packages an application with its dependencies into an image; containers run it the same "
          "way on every machine, isolated, sharing the host kernel, lighter than virtual machines.")
PATCH = ("PUT replaces the whole resource with the full representation, so omitted fields are reset; "
         "it is idempotent. PATCH is a partial update that changes only the fields sent.")
MODEL = {q["id"]: q["model_answer"] for q in json.loads((ROOT / "questions.json").read_text("utf-8"))}
GOOD_CSV = HEADER + f'Ann,docker,"{DOCKER}"\nBob,put-vs-patch,"{PATCH}"\n'


def run(*args, input=None, env=None, timeout=300):
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(grader_cmd() + [str(a) for a in args], input=input, capture_output=True,
                          cwd=ROOT, timeout=timeout, env=full_env)


def one_line_error(stderr: bytes | str) -> str:
    text = stderr.decode("utf-8", "replace") if isinstance(stderr, bytes) else stderr
    assert "Traceback" not in text, text
    lines = [ln for ln in text.splitlines() if ln.strip()]
    assert len(lines) == 1, text
    return lines[0]


# ----------------------------------------------------------------------------- batch input, in-process


def _plan(path: Path, bank):
    """(plan, None) for a file that validates, (None, message) for one that does not."""
    from grader.batch import plan_batch
    from grader.errors import InputError
    from grader.batch.ingest import open_source

    try:
        src = open_source(str(path))
    except InputError as exc:
        return None, str(exc)
    try:
        return plan_batch(src, bank, skip_invalid=False), None
    except InputError as exc:
        return None, str(exc)
    finally:
        src.close()


def _rows(path: Path):
    from grader.batch.ingest import AnswerRow, iter_rows, open_source

    src = open_source(str(path))
    try:
        return [r for r in iter_rows(src) if isinstance(r, AnswerRow)]
    finally:
        src.close()


def _utf16_nobom(text: str) -> bytes:
    return text.encode("utf-16-le")


BAD_INPUTS = {
    # name: (bytes, [substrings the one-line message must contain])
    "empty.csv": (b"", ["empty.csv: empty file"]),
    "bom-only.csv": (codecs.BOM_UTF8, ["bom-only.csv:1: empty file"]),
    "header-only.csv": (HEADER.encode(), ["header-only.csv: no answers"]),
    "blank-lines.csv": (b"\n\n   \n", ["blank-lines.csv:1: candidate: missing column"]),
    "utf16-nobom.csv": (_utf16_nobom(GOOD_CSV), ["utf16-nobom.csv:1:", "NUL", "UTF-16"]),
    "latin1.csv": ((HEADER + "Ann,docker,ok\nJos\u00e9,docker,caf\u00e9 au lait\n").encode("latin-1"),
                   ["latin1.csv:3:", "not UTF-8"]),
    "cp1252.jsonl": (('{"candidate": "Ann", "question_id": "docker", "answer": "ok"}\n'
                      '{"candidate": "B\u00f6b", "question_id": "docker", "answer": "\u201cquoted\u201d"}\n').encode("cp1252"),
                     ["cp1252.jsonl:2:", "not UTF-8"]),
    "binary.csv": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4, ["binary.csv:3:", "NUL"]),
    "random.jsonl": (bytes((i * 7919 + 13) % 251 + 1 for i in range(5000)), ["random.jsonl", "not UTF-8"]),
    "nul-byte.csv": ((GOOD_CSV + "Cid,docker,a\x00b\n").encode(), ["nul-byte.csv:4:", "NUL"]),
    "nul-escaped.jsonl": (b'{"candidate": "Ann", "question_id": "docker", "answer": "ok"}\n'
                          b'{"candidate": "Bob", "question_id": "docker", "answer": "a\\u0000b"}\n',
                          ["nul-escaped.jsonl:2: answer: contains a NUL byte"]),
    "ragged-short.csv": ((GOOD_CSV + "Cid,docker\n").encode(), ["ragged-short.csv:4:", "2 fields, header has 3"]),
    "ragged-long.csv": ((GOOD_CSV + "Cid,docker,a,b\n").encode(), ["ragged-long.csv:4:", "4 fields, header has 3"]),
    "missing-column.csv": (b"candidate,answer\nAnn,hello\n", ["missing-column.csv:1: question_id: missing column"]),
    "duplicate-column.csv": (b"candidate,question_id,answer,Answer\nAnn,docker,a,b\n",
                             ["duplicate-column.csv:1: answer: column appears twice"]),
    "header-newline.csv": (b'"cand\nidate",question_id,answer\nAnn,docker,a\n',
                           ["header-newline.csv:1: candidate: missing column", "cand\\nidate"]),
    # A multi-line quoted answer (lines 2-4); the problem after it is named by its real line.
    "embedded-newlines.csv": ((HEADER + 'Ann,docker,"line one\nline two\nline three"\nBob,dockr,hello\n').encode(),
                              ["embedded-newlines.csv:5: question_id: unknown question id 'dockr'"]),
    "embedded-crlf.csv": ((HEADER + 'Ann,docker,"line one\r\nline two"\r\n"Bob\r\nSmith",docker,x\r\n'
                           'Cid,docker,ok\r\nCid,docker,again\r\n').encode(),
                          ["embedded-crlf.csv:7: candidate: duplicate answer of 'Cid' to 'docker' (first at line 6)"]),
    "unterminated-quote.csv": ((GOOD_CSV + 'Cid,docker,"never closed\nDan,docker,lost?\n').encode(),
                               ["unterminated-quote.csv:4:", "never closed"]),
    "junk-after-quote.csv": ((GOOD_CSV + 'Cid,docker,"quoted"junk\n').encode(), ["junk-after-quote.csv:4:", "CSV"]),
    "unknown-id.csv": ((GOOD_CSV + "Cid,no-such-question,hello\n").encode(),
                       ["unknown-id.csv:4: question_id: unknown question id 'no-such-question'"]),
    "traversal-id.csv": ((GOOD_CSV + "Cid,../../etc/passwd,hello\n").encode(),
                         ["traversal-id.csv:4: question_id: unknown question id '../../etc/passwd'"]),
    "duplicate-answer.csv": ((GOOD_CSV + "Ann,docker,again\n").encode(),
                             ["duplicate-answer.csv:4: candidate: duplicate answer of 'Ann' to 'docker' (first at line 2)"]),
    "empty-candidate.csv": ((GOOD_CSV + ",docker,x\n").encode(), ["empty-candidate.csv:4: candidate: empty"]),
    "zero-width-candidate.csv": ((GOOD_CSV + "\u200b\u200b,docker,x\n").encode(),
                                 ["zero-width-candidate.csv:4: candidate: empty"]),
    "not-a-list.json": (b'{"candidate": "Ann", "question_id": "docker", "answer": "x"}',
                        ["not-a-list.json:1: expected a JSON list of answers"]),
    "scalar.json": (b'"just a string"', ["scalar.json:1: expected a JSON list"]),
    "list-of-numbers.json": (b"[1, 2, 3]", ["list-of-numbers.json:1: expected a JSON object"]),
    "invalid.json": (b'[\n{"candidate": "Ann",\n "answer": }\n]', ["invalid.json:3: invalid JSON"]),
    "truncated.json": (b'[{"candidate": "Ann", "question_id": "docker", "answer": "x"', ["truncated.json:1: invalid JSON"]),
    "invalid-line.jsonl": (b'{"candidate": "Ann", "question_id": "docker", "answer": "x"}\n\n{"candidate": \n',
                           ["invalid-line.jsonl:3: invalid JSON"]),
    "list-line.jsonl": (b'["Ann", "docker", "x"]\n', ["list-line.jsonl:1: expected a JSON object"]),
    "wrong-type.jsonl": (b'{"candidate": ["Ann"], "question_id": "docker", "answer": "x"}\n',
                         ["wrong-type.jsonl:1: candidate: must be text"]),
    "bool-type.json": (b'[{"candidate": "Ann", "question_id": true, "answer": "x"}]',
                       ["bool-type.json:1: question_id: must be text"]),
    "null-answer.jsonl": (b'{"candidate": "Ann", "question_id": "docker", "answer": null}\n',
                          ["null-answer.jsonl:1: answer: missing"]),
    "object-answer.jsonl": (b'{"candidate": "Ann", "question_id": "docker", "answer": {"text": "x"}}\n',
                            ["object-answer.jsonl:1: answer: must be text"]),
    "huge-field.csv": (HEADER.encode() + b'Ann,docker,"' + b"x" * (11 * 1024 * 1024) + b'"\n',
                       ["huge-field.csv:2:", "field larger than field limit"]),
}


@pytest.mark.parametrize("name", sorted(BAD_INPUTS))
def test_bad_batch_input_is_one_line_naming_file_and_line(tmp_path, bank, name):
    data, needles = BAD_INPUTS[name]
    p = tmp_path / name
    p.write_bytes(data)
    plan, msg = _plan(p, bank)
    assert plan is None, f"{name} was accepted"
    # Every problem of the file is listed, each on one line of its own.
    lines = msg.split("\n")
    assert "\r" not in msg, msg
    assert all(line.startswith(str(p)) and len(line) < 400 for line in lines), msg
    for needle in needles:
        assert needle in lines[0], msg


def test_unterminated_quote_loses_nothing_silently(tmp_path):
    """Before strict CSV parsing, the rest of the file became one answer and Dan vanished."""
    from grader.batch.ingest import RowProblem, iter_rows, open_source

    p = tmp_path / "a.csv"
    p.write_bytes(BAD_INPUTS["unterminated-quote.csv"][0])
    src = open_source(str(p))
    items = list(iter_rows(src))
    assert isinstance(items[-1], RowProblem) and items[-1].fatal


ENCODINGS_OK = {
    "utf8.csv": GOOD_CSV.encode("utf-8"),
    "utf8-bom.csv": codecs.BOM_UTF8 + GOOD_CSV.encode("utf-8"),
    "utf16-le-bom.csv": codecs.BOM_UTF16_LE + GOOD_CSV.encode("utf-16-le"),
    "utf16-be-bom.csv": codecs.BOM_UTF16_BE + GOOD_CSV.encode("utf-16-be"),
    "utf32-bom.csv": GOOD_CSV.encode("utf-32"),
    "crlf.csv": GOOD_CSV.replace("\n", "\r\n").encode(),
    "utf16-bom.jsonl": "\n".join(json.dumps({"candidate": c, "question_id": q, "answer": a}) for c, q, a in
                                 (("Ann", "docker", DOCKER), ("Bob", "put-vs-patch", PATCH))).encode("utf-16"),
    "utf8-bom.json": codecs.BOM_UTF8 + json.dumps([{"candidate": "Ann", "question_id": "docker", "answer": DOCKER},
                                                   {"candidate": "Bob", "question_id": "put-vs-patch", "answer": PATCH}]).encode(),
    "extra-columns.csv": ("score,candidate,notes,question_id,answer,\n"
                          f'9,Ann,"x,y",docker,"{DOCKER}",\n1,Bob,,put-vs-patch,"{PATCH}",\n').encode(),
}


@pytest.mark.parametrize("name", sorted(ENCODINGS_OK))
def test_encodings_and_extra_columns_are_read_exactly(tmp_path, bank, name):
    p = tmp_path / name
    p.write_bytes(ENCODINGS_OK[name])
    plan, msg = _plan(p, bank)
    assert msg is None, msg
    assert plan.valid == 2
    rows = _rows(p)
    assert [(r.candidate, r.question_id, r.answer) for r in rows] == [
        ("Ann", "docker", DOCKER), ("Bob", "put-vs-patch", PATCH)]


def test_embedded_newlines_are_kept_and_lines_counted(tmp_path, bank):
    text = (HEADER + 'Ann,docker,"line one\nline two, with a comma\n\nafter a blank line"\n'
            '"Bob\nB",put-vs-patch,"say ""hi"""\nCid,docker,last\n')
    p = tmp_path / "multi.csv"
    p.write_text(text, encoding="utf-8", newline="")
    plan, msg = _plan(p, bank)
    assert msg is None, msg
    rows = _rows(p)
    assert [r.line for r in rows] == [2, 6, 8]
    assert rows[0].answer == "line one\nline two, with a comma\n\nafter a blank line"
    assert rows[1].candidate == "Bob B" and rows[1].answer == 'say "hi"'


def test_skip_invalid_names_every_problem_after_multiline_fields(tmp_path, bank):
    from grader.batch import plan_batch
    from grader.batch.ingest import open_source

    text = (HEADER + 'Ann,docker,"a\nb\nc"\n' + "Bob,nope,x\n" + 'Cid,docker,"d\ne"\n' + "Dan,docker\n"
            + "Eve,docker,fine\n")
    p = tmp_path / "mixed.csv"
    p.write_text(text, encoding="utf-8")
    src = open_source(str(p))
    plan = plan_batch(src, bank, skip_invalid=True)
    assert [(x.line, x.field) for x in plan.problems] == [(5, "question_id"), (8, "")]
    assert plan.valid == 3


# ----------------------------------------------------------------------------- odd but valid answers, graded


def _grade(grader_, bank, qid, text):
    return grader_.grade(bank.questions[qid], bank.rubrics[qid], text)


def test_invisible_and_bidi_characters_do_not_change_the_grade(grader_, bank):
    plain = _grade(grader_, bank, "put-vs-patch", PATCH)
    zw = PATCH.replace("partial", "par\u200btial").replace("PATCH", "PA\u200dTCH").replace("idempotent", "idem\u00adpotent")
    bidi = "\u202b" + PATCH + "\u202c\u2066\u2069"
    for text in (zw, bidi, "\ufeff" + PATCH):
        r = _grade(grader_, bank, "put-vs-patch", text)
        assert r.score == plain.score, (text, r.score, plain.score)
        assert [c.matched for c in r.concepts] == [c.matched for c in plain.concepts]


def test_emoji_rtl_and_mixed_scripts_are_graded(grader_, bank):
    texts = [
        "🐳🐳🐳 " * 50,
        "דוקר אורז יישום עם התלויות שלו לתוך אימג' שרץ בכל מכונה.",
        "Docker 🐳 packages an app into an image ✅; containers share the host kernel 🧠. مرحبا",
        "\u0000\u0001\u0007 control characters \x1b[31m red \x1b[0m and a bell",
        "\U0001F600" * 5000,
    ]
    for t in texts:
        r = _grade(grader_, bank, "docker", t)
        assert 0 <= r.score <= r.max_score
    good = _grade(grader_, bank, "docker", "🐳 " + MODEL["docker"].replace(". ", " ✅. ") + " 🚀")
    assert good.score >= 9


def test_one_megabyte_answer_is_read_up_to_the_limit_and_flagged(grader_, bank):
    from grader.scoring.pipeline import MAX_ANSWER_CHARS

    text = DOCKER + " " + ("padding words to make it long " * 40_000)[: 1024 * 1024]
    t0 = time.monotonic()
    r = _grade(grader_, bank, "docker", text)
    assert time.monotonic() - t0 < 60
    assert "answer truncated" in r.flags and r.score > 0
    assert len(text) > MAX_ANSWER_CHARS


def _finishes(fn, seconds: float):
    """Run fn in a thread; fail (not hang) if it takes longer than `seconds`."""
    out = {}

    def target():
        out["value"] = fn()

    th = threading.Thread(target=target, daemon=True)
    th.start()
    th.join(seconds)
    assert not th.is_alive(), f"did not finish within {seconds} s"
    return out.get("value")


def test_pathological_terms_and_answers_finish_fast():
    """Terms are not regexes; a long term whose words repeat hundreds of times in one
    sentence used to try 8**k combinations of positions (minutes for 10 words)."""
    from grader.scoring.keywords import find_terms
    from grader.text import analyse

    words = [f"{w}ing" for w in ("alpha", "bravo", "charl", "delta", "echoz", "foxtr", "golfz", "hotel",
                                 "india", "julie", "kilos", "limao", "mikes", "novem", "oscar", "papas")]
    term = " ".join(words)
    assert len(term) <= 200
    # Reversed, so no in-order window exists and every combination would be tried.
    sentence = " ".join(list(reversed(words)) * 60)
    sents = analyse(sentence)
    for claims in (False, True):
        _finishes(lambda: find_terms([term, "a" * 200, "aaaaaaa " * 25], sents, claims=claims), 10)
    # Typo-tolerant words against one enormous token, and a term of one letter repeated.
    sents2 = analyse("x" * 20_000 + " " + "aaaaaaaa " * 2000)
    _finishes(lambda: find_terms(["x" * 199 + "y", "aaaaaaab " * 20], sents2), 10)


def test_pathological_answers_grade_fast(grader_, bank):
    """Regex-heavy flag patterns on 20,000 letters in a row used to be quadratic (seconds each)."""
    from grader.scoring import flags as F

    blobs = ["a" * 20_000, "0123456789abcdef" * 1250, "ab/+" * 5000, "ignore " * 3000 + "x", "<" * 20_000,
             "score: " * 3000, "\t" * 20_000]
    for b in blobs:
        _finishes(lambda: F.answer_flags(b), 2)
    _finishes(lambda: [_grade(grader_, bank, "docker", b) for b in blobs], 120)


def test_blob_flag_unchanged():
    """The base64-blob check (rewritten to be linear) still tells blobs from digests and prose."""
    from grader.scoring.flags import looks_injected

    assert looks_injected("aGVsbG8gd29ybGQgdGhpcyBpcyBhIGJhc2U2NCBwYXlsb2FkIHRoYXQgaXMgbG9uZw==")
    assert not looks_injected("The commit is 3f786850e387550fdab836ed7e6dc881de23001b and it is fine.")
    assert not looks_injected("A JWT has a header, a payload and a signature, base64url encoded.")


# ----------------------------------------------------------------------------- bank and rubrics, in-process

GOOD_RUBRIC = """question_id = "{qid}"
points = 10

[[concepts]]
name = "Images"
description = "Docker packages an application into an image."
weight = 2
terms = ["image"]
hint = "Say what an image is."
"""

BAD_RUBRICS = {
    # name: (toml text, substrings of the message: the file and the field)
    "wrong-type": (GOOD_RUBRIC.replace("weight = 2", 'weight = "heavy"'), ["concepts.0.weight", "valid number"]),
    "terms-not-list": (GOOD_RUBRIC.replace('terms = ["image"]', 'terms = "image"'), ["concepts.0.terms"]),
    "unknown-field": (GOOD_RUBRIC.replace("weight = 2", "wieght = 2"), ["concepts.0.wieght", "Extra inputs"]),
    "unknown-top": (GOOD_RUBRIC + "\nowner = 'x'\n", ["owner", "Extra inputs"]),
    "duplicate-concept": (GOOD_RUBRIC + GOOD_RUBRIC.split("\n", 2)[2].replace("Images", "images"),
                          ["concepts[1].name", "duplicate"]),
    "zero-weight": (GOOD_RUBRIC.replace("weight = 2", "weight = 0"), ["concepts.0.weight", "greater than 0"]),
    "negative-weight": (GOOD_RUBRIC.replace("weight = 2", "weight = -3"), ["concepts.0.weight", "greater than 0"]),
    "nan-weight": (GOOD_RUBRIC.replace("weight = 2", "weight = nan"), ["concepts.0.weight"]),
    "inf-points": (GOOD_RUBRIC.replace("points = 10", "points = inf"), ["points"]),
    "negative-penalty": (GOOD_RUBRIC + '\n[[misconceptions]]\nname = "m"\nterms = ["x"]\nwhy = "w"\npenalty = -1\n',
                         ["misconceptions.0.penalty"]),
    "empty-term": (GOOD_RUBRIC.replace('terms = ["image"]', 'terms = ["image", "  "]'), ["concepts.0.terms", "empty"]),
    "long-term": (GOOD_RUBRIC.replace('terms = ["image"]', 'terms = ["' + "(a+)+" * 50 + '"]'),
                  ["concepts.0.terms", "longer than 200"]),
    "no-concepts": ('question_id = "{qid}"\n', ["concepts", "Field required"]),
    "traversal-id": (GOOD_RUBRIC.replace('"{qid}"', '"../../etc/passwd"'), ["question_id", "pattern"]),
    "invalid-toml": (GOOD_RUBRIC.replace("weight = 2", "weight = = 2"), ["invalid TOML", "line 7"]),
    "both-weights-zero": (GOOD_RUBRIC + "\n[weights]\nkeywords = 0\nsemantic = 0\n", ["weights", "cannot both be 0"]),
}


@pytest.mark.parametrize("name", sorted(BAD_RUBRICS))
def test_bad_rubric_is_one_line_naming_file_and_field(tmp_path, name):
    from grader.bank import load_rubric
    from grader.errors import InputError

    text, needles = BAD_RUBRICS[name]
    p = tmp_path / "docker.toml"
    p.write_text(text.replace("{qid}", "docker"), encoding="utf-8")
    with pytest.raises(InputError) as ei:
        load_rubric(p)
    msg = str(ei.value)
    assert "\n" not in msg and msg.startswith(str(p)), msg
    for n in needles:
        assert n in msg, msg


def test_rubric_encodings(tmp_path):
    from grader.bank import load_rubric
    from grader.errors import InputError

    p = tmp_path / "docker.toml"
    p.write_bytes(codecs.BOM_UTF8 + GOOD_RUBRIC.replace("{qid}", "docker").encode())
    assert load_rubric(p).concepts[0].name == "Images"
    p.write_bytes(GOOD_RUBRIC.replace("{qid}", "docker").replace("Images", "Imágenes").encode("latin-1"))
    with pytest.raises(InputError, match=r"docker.toml:5: not UTF-8"):
        load_rubric(p)
    p.write_bytes(b"\x00\x01\x02binary")
    with pytest.raises(InputError, match=r"docker.toml: invalid TOML"):
        load_rubric(p)


def _question(qid="docker", **kw):
    return {"id": qid, "topic": "Deployment", "question": "What is Docker?", "model_answer": DOCKER, **kw}


BAD_BANKS = {
    "empty": (b"", ["invalid JSON"]),
    "not-a-list": (json.dumps({"questions": [_question()]}).encode(), ["expected a JSON list"]),
    "duplicate-id": (json.dumps([_question(), _question()]).encode(), ["question [1] id: duplicate id 'docker'"]),
    "traversal-id": (json.dumps([_question("../../etc/passwd")]).encode(), ["question [0] id:", "pattern"]),
    "absolute-id": (json.dumps([_question("/etc/passwd")]).encode(), ["question [0] id:", "pattern"]),
    "dot-id": (json.dumps([_question("..")]).encode(), ["question [0] id:", "pattern"]),
    "wrong-type": (json.dumps([_question(topic=5)]).encode(), ["question [0] topic:"]),
    "unknown-field": (json.dumps([_question(rubric="../../etc/passwd")]).encode(), ["question [0] rubric:", "Extra"]),
    "not-objects": (b"[1, 2]", ["question [0]"]),
    "latin1": ('[{"id": "docker", "topic": "D\u00e9ploiement"}]'.encode("latin-1"), [":1: not UTF-8"]),
    "utf16-nobom": (json.dumps([_question()]).encode("utf-16-le"), ["invalid JSON"]),
    "binary": (bytes(range(256)), ["not UTF-8"]),
}


@pytest.mark.parametrize("name", sorted(BAD_BANKS))
def test_bad_question_bank_is_one_line(tmp_path, name):
    from grader.bank import load_bank
    from grader.errors import InputError

    data, needles = BAD_BANKS[name]
    p = tmp_path / "questions.json"
    p.write_bytes(data)
    (tmp_path / "rubrics").mkdir()
    with pytest.raises(InputError) as ei:
        load_bank(p, tmp_path / "rubrics")
    msg = str(ei.value)
    assert "\n" not in msg and msg.startswith(str(p)), msg
    for n in needles:
        assert n in msg, msg


def test_rubric_paths_stay_inside_the_rubric_folder(tmp_path):
    """Ids are slugs: no question or rubric can point grader at a file outside its folders."""
    from grader.bank import load_bank, validate_rubrics

    secret = tmp_path / "secret.toml"
    secret.write_text(GOOD_RUBRIC.replace("{qid}", "secret"), encoding="utf-8")
    rubrics = tmp_path / "bank" / "rubrics"
    rubrics.mkdir(parents=True)
    (rubrics / "docker.toml").write_text(GOOD_RUBRIC.replace("{qid}", "../secret"), encoding="utf-8")
    qfile = tmp_path / "bank" / "questions.json"
    qfile.write_text(json.dumps([_question()]), encoding="utf-8")
    problems = validate_rubrics(qfile, rubrics)
    assert any(p.field == "question_id" and "pattern" in p.message for p in problems), problems
    for bad in ("../secret", "../../secret", "docker/../../secret", "docker\x00"):
        qfile.write_text(json.dumps([_question(bad)]), encoding="utf-8")
        from grader.errors import InputError

        with pytest.raises(InputError, match="id:"):
            load_bank(qfile, rubrics)


# ----------------------------------------------------------------------------- real processes

CLI_BAD_BATCH = ["latin1.csv", "utf16-nobom.csv", "embedded-newlines.csv", "not-a-list.json", "huge-field.csv",
                 "binary.csv"]


@pytest.mark.parametrize("name", CLI_BAD_BATCH)
def test_cli_batch_bad_input_exit_2_one_line(tmp_path, name):
    data, needles = BAD_INPUTS[name]
    p = tmp_path / name
    p.write_bytes(data)
    r = run("batch", p, "--results", tmp_path / "res.jsonl", "--quiet")
    assert r.returncode == 2, r.stderr
    line = one_line_error(r.stderr)
    assert line.startswith("error: ") and str(p) in line
    for n in needles:
        assert n in line, line
    assert not (tmp_path / "res.jsonl").exists()


def test_cli_batch_grades_utf16_and_multiline_csv(tmp_path):
    docker = MODEL["docker"].replace('"', '""')
    text = (HEADER + f'Ann,docker,"{docker}\nSecond line: images are built from a Dockerfile."\n'
            + f'"Bob 🐳 \u202eevil",put-vs-patch,"{PATCH}"\n' + 'Cid,docker,"\u200b\u200b"\n')
    p = tmp_path / "answers.csv"
    p.write_bytes(text.encode("utf-16"))
    out = tmp_path / "out.jsonl"
    r = run("batch", p, "--out", out, "--quiet")
    assert r.returncode == 0, r.stderr
    recs = {x["candidate"]: x for x in map(json.loads, out.read_text("utf-8").splitlines()) if x["line"]}
    assert recs["Ann"]["line"] == 2 and recs["Ann"]["score"] >= 9
    assert recs["Ann"]["answer"].endswith("\nSecond line: images are built from a Dockerfile.")
    assert recs["Bob 🐳 \u202eevil"]["line"] == 4 and recs["Bob 🐳 \u202eevil"]["score"] >= 7
    assert recs["Cid"]["band"] == "no answer" and recs["Cid"]["score"] == 0


def test_cli_grade_stdin_encodings_and_hostile_text(tmp_path):
    # UTF-16 with a BOM is read (here with a megabyte of emoji, bidi, zero-width, NUL and escape
    # codes after a good answer); Latin-1 and unknown ids are refused in one line.
    junk = ("🐳 Docker packages an app into an image. \u200b\u202e" + "\x00\x1b[2J" + "ignore " * 10) * 20_000
    r = run("grade", "-q", "docker", "--format", "json", input=(MODEL["docker"] + "\n" + junk).encode("utf-16"))
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads(r.stdout)
    assert 0 < res["score"] <= 10 and "answer truncated" in res["flags"]
    evidence = {c["evidence"] for c in res["concepts"] if c["evidence"]}
    assert evidence & set(re.split(r"(?<=[.;])\s+", MODEL["docker"])), evidence
    r = run("grade", "-q", "docker", input="Docker isolates applications in containers, café".encode("latin-1"))
    assert r.returncode == 2
    assert "standard input: not UTF-8" in one_line_error(r.stderr)
    r = run("grade", "-q", "../../etc/passwd", "--answer", "x")
    assert r.returncode == 2 and "unknown question id" in one_line_error(r.stderr)


def test_cli_questions_list_with_bad_bank(tmp_path):
    cases = {
        "traversal.json": (json.dumps([_question("../../etc/passwd")]).encode(), "question [0] id:"),
        "latin1.json": ('[{"id": "caf\u00e9"}]'.encode("latin-1"), ":1: not UTF-8"),
    }
    for name, (data, needle) in cases.items():
        p = tmp_path / name
        p.write_bytes(data)
        r = run("questions", "list", env={"GRADER_QUESTIONS": str(p), "GRADER_RUBRICS_DIR": str(tmp_path)})
        assert r.returncode == 2, r.stderr
        line = one_line_error(r.stderr)
        assert str(p) in line and needle in line, line


def test_cli_rubric_validate_names_every_bad_rubric(tmp_path):
    rubrics = tmp_path / "rubrics"
    rubrics.mkdir()
    qs = [_question(q) for q in ("wrong-type", "unknown-field", "duplicate-concept", "zero-weight", "traversal-id",
                                 "invalid-toml")]
    qfile = tmp_path / "questions.json"
    qfile.write_text(json.dumps(qs), encoding="utf-8")
    for q in qs:
        (rubrics / f"{q['id']}.toml").write_text(BAD_RUBRICS[q["id"]][0].replace("{qid}", q["id"]), encoding="utf-8")
    r = run("rubric", "validate", "--rubrics", rubrics, "--questions", qfile)
    assert r.returncode == 2
    out = r.stdout.decode()
    assert "Traceback" not in out + r.stderr.decode()
    errors = [ln for ln in out.splitlines() if ln.startswith("error: ")]
    for q in qs:
        mine = [ln for ln in errors if f"{q['id']}.toml" in ln]
        assert mine, out
    by_file = {q["id"]: next(ln for ln in errors if f"{q['id']}.toml:" in ln) for q in qs}
    assert "concepts.0.weight" in by_file["wrong-type"]
    assert "concepts.0.wieght" in by_file["unknown-field"]
    assert "concepts[1].name" in by_file["duplicate-concept"]
    assert "concepts.0.weight" in by_file["zero-weight"]
    assert "question_id" in by_file["traversal-id"]
    assert "invalid TOML" in by_file["invalid-toml"]


# ----------------------------------------------------------------------------- security of the reports

XSS = [
    '<script>alert("c")</script>',
    '<img src=x onerror=alert(1)>',
    '<a href="javascript:alert(2)">link</a>',
    '"><svg onload=alert(3)>',
    "</script><script>alert(4)</script>",
    "<!--", "]]>", "{{ 7*7 }}",
]
FORMULAS = ["=1+1", "+1+1", "-1+1", "@SUM(A1)", "\t=1+1", "\r=1+1", '=HYPERLINK("http://x","y")']


class _Tags(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs += attrs


@pytest.fixture(scope="module")
def hostile_batch(tmp_path_factory):
    d = tmp_path_factory.mktemp("hostile-batch")
    rows = []
    for i, x in enumerate(XSS):
        rows.append({"candidate": f"cand{i} {x}", "question_id": f"q{i} {x}", "question": f"Question {x}?",
                     "reference_answer": "A container image bundles an application with its dependencies.",
                     "topic": f"topic {x}", "submission_id": f"sub {x}",
                     "answer": f"A container image bundles the app and its dependencies {x} so it runs anywhere."})
        rows.append({"candidate": f"cand{i} {x}", "question_id": "docker", "answer": f"{x} {DOCKER}"})
    for i, f in enumerate(FORMULAS):
        rows.append({"candidate": f"{f} cand{i}", "question_id": f"{f} qid{i}", "question": "What is a container?",
                     "reference_answer": "A container runs an image in isolation.", "topic": f"{f} topic",
                     "answer": f"{f} a container runs an image in isolation", "submission_id": f})
    for q in ("../x", "../../x.toml", "/tmp/grader-x", "x/../../y"):  # ids are text, never paths
        rows.append({"candidate": "Ann", "question_id": q, "question": "What is a container?",
                     "reference_answer": "A container runs an image in isolation.",
                     "answer": "It runs an image in isolation."})
    src = d / "in" / "hostile.jsonl"
    src.parent.mkdir()
    src.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    outs = [d / n for n in ("r.html", "r.md", "r.csv")]
    args = ["batch", src, "--results", d / "res.jsonl", "--quiet"]
    for o in outs:
        args += ["--out", o]
    r = run(*args)
    assert r.returncode == 0, r.stderr.decode()
    r2 = run("batch", src, "--results", d / "res.jsonl", "--resume", "--by", "candidate", "--out", d / "c.csv",
             "--quiet")
    assert r2.returncode == 0, r2.stderr.decode()
    return d, rows


def test_html_report_escapes_every_input_text(hostile_batch):
    d, rows = hostile_batch
    html = (d / "r.html").read_text("utf-8")
    p = _Tags()
    p.feed(html)
    # The template's own tags only: no script at all, two charts (inline SVG), no injected elements.
    assert "script" not in p.tags and p.tags.count("svg") == 2
    assert not {"img", "a", "iframe", "object", "foreignobject"} & set(p.tags), set(p.tags)
    assert not [a for a, _ in p.attrs if a.startswith("on")]
    assert not [v for a, v in p.attrs if a in ("href", "src", "action", "formaction", "xlink:href", "style")
                and v and "javascript:" in v.lower()]
    assert "&lt;script&gt;" in html and "alert(" in html  # shown as text
    # Labels inside the charts are text too.
    charts = html.split("<h2>Charts", 1)[1].split("<h2>Questions", 1)[0]
    assert "&lt;" in charts
    assert "49" not in html.split("<h2>Ranking", 1)[1].split("<h2>Charts", 1)[0]  # {{ 7*7 }} is not evaluated


def test_markdown_report_escapes_markup(hostile_batch):
    d, _ = hostile_batch
    md = (d / "r.md").read_text("utf-8")
    # Every "<" of the input is shown escaped ("\<"), so no tag reaches a Markdown renderer.
    assert not re.search(r"(?<!\\)<", md), re.search(r".{0,40}(?<!\\)<.{0,40}", md).group()
    assert "\\<script\\>" in md


def _cells(path: Path):
    with open(path, encoding="utf-8", newline="") as fh:
        return list(csv.reader(fh))


def test_csv_cells_never_start_a_formula(hostile_batch):
    d, rows = hostile_batch
    for name in ("r.csv", "c.csv"):
        table = _cells(d / name)
        flat = [c for row in table for c in row]
        bad = [c for c in flat if c and c[0] in "=+-@\t\r"]
        assert not bad, (name, bad)
    answers = _cells(d / "r.csv")
    header = answers[0]
    got = {(r[header.index("candidate")], r[header.index("question_id")]): r for r in answers[1:]}
    for i, f in enumerate(FORMULAS):
        cand = " ".join(f"{f} cand{i}".split())  # ingest collapses whitespace in names and ids
        qid = " ".join(f"{f} qid{i}".split())
        row = got[("'" + cand if cand[0] in "=+-@" else cand, "'" + qid if qid[0] in "=+-@" else qid)]
        assert row[header.index("answer")] == "'" + f"{f} a container runs an image in isolation"
        assert row[header.index("submission_id")] == "'" + f
        assert row[header.index("topic")] == "'" + f"{f} topic"
    cands = _cells(d / "c.csv")
    assert any(c.startswith("'=HYPERLINK") for c in cands[0]), cands[0]  # custom question ids as column names
    assert any(row[1] == "'=1+1 cand0" for row in cands[1:])


def test_safe_cell_unit():
    from grader.reports.tabular import safe_cell

    for f in FORMULAS + ["-", "=", "@", "+"]:
        assert safe_cell(f) == "'" + f
    for ok in ("Ann", " =1", "1.5", "", "'=already"):
        assert safe_cell(ok) == ok
    assert safe_cell(None) == "" and safe_cell(2.5) == "2.5"


def test_row_question_ids_are_never_paths(hostile_batch):
    """A batch row's question_id ("../x") is only text: nothing is created from it."""
    d, _ = hostile_batch
    made = {str(p.relative_to(d)) for p in d.rglob("*")}
    assert made == {"in", "in/hostile.jsonl", "res.jsonl", "r.html", "r.md", "r.csv", "c.csv"}, made
    assert not Path("/tmp/grader-x").exists()
