"""`grader ask` driven through a real pseudo-terminal, typed as a person would."""

import json
import os
import signal
import time

import pexpect
import pytest

from conftest import ROOT, grader_cmd
from llm_server import _fake_llm_server, fake_llm  # noqa: F401

ANSWER = [
    "PUT replaces the whole resource with the full representation you send,",
    "so omitted fields are reset. It is idempotent.",
    "PATCH is a partial update: only the fields you send change.",
]


def spawn(tmp_path, *args):
    return spawn_env(tmp_path, {}, *args)


def spawn_env(tmp_path, extra, *args):
    cmd = grader_cmd()
    env = dict(os.environ, GRADER_REPORTS_DIR=str(tmp_path / "reports"), COLUMNS="100", TERM="xterm", **extra)
    return pexpect.spawn(cmd[0], cmd[1:] + list(args), cwd=str(ROOT), env=env,
                         encoding="utf-8", timeout=180, dimensions=(40, 100))


def type_answer(child, lines):
    for line in lines:
        child.expect("│")
        child.sendline(line)
    child.expect("│")
    child.sendline("")  # the empty line that finishes


def test_ask_two_questions_then_summary(tmp_path):
    child = spawn(tmp_path, "ask", "--topic", "REST API Design")
    child.expect("Question 1/")
    child.expect("empty line to finish")
    first = child.before
    type_answer(child, ["REST is about resources at URLs, HTTP verbs and stateless requests."])
    child.expect(r"(\d+(\.\d+)?) / 10")
    child.expect("Next question")
    child.sendline("y")
    child.expect("Question 2/")
    type_answer(child, ["No idea."])
    child.expect(r"/ 10")
    child.expect("Next question")
    child.sendline("n")
    child.expect("Session summary")
    child.expect("Report: ")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    reports = list((tmp_path / "reports").glob("session-*.json"))
    assert len(reports) == 1 and list((tmp_path / "reports").glob("session-*.md"))
    data = json.loads(reports[0].read_text())
    assert len(data["answers"]) == 2


def test_ask_ctrl_c_keeps_graded_answers(tmp_path):
    child = spawn(tmp_path, "ask", "--question", "put-vs-patch")
    child.expect("empty line to finish")
    type_answer(child, ANSWER)
    child.expect(r"(\d+(\.\d+)?) / 10")
    score = float(child.match.group(1))
    assert score >= 7
    child.expect("Model answer")
    child.expect("Session summary")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0

    child = spawn(tmp_path, "ask", "--topic", "Caching")
    child.expect("empty line to finish")
    type_answer(child, ["Browser cache, CDN, Redis application cache and the database query cache."])
    child.expect(r"/ 10")
    child.expect(r"Next question\? .*\[Y/n\]")
    # Ctrl-C at the prompt, once the prompt waits for input (a SIGINT in the instant before
    # input() starts reading is only noticed at the next keypress).
    time.sleep(1.0)
    child.sendintr()
    child.expect("Stopped")
    child.expect("Session summary")
    child.expect(pexpect.EOF)
    child.close()
    assert "Traceback" not in (child.before or "")
    assert child.exitstatus == 0
    sessions = sorted((tmp_path / "reports").glob("session-*.json"))
    assert len(sessions) == 2
    assert len(json.loads(sessions[-1].read_text())["answers"]) == 1


def test_ask_with_llm_feedback(tmp_path, fake_llm):
    child = spawn_env(tmp_path, {"OPENAI_BASE_URL": fake_llm.url, "OPENAI_API_KEY": "sk-test-ASK-1",
                                 "GRADER_LLM_MODEL": "test-model"}, "ask", "--question", "docker", "--llm")
    child.expect("empty line to finish")
    type_answer(child, ["Docker packages an app and its dependencies into an image that runs as a container."])
    child.expect(r"/ 10")
    child.expect("Feedback")
    child.expect("Session summary")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0 and len(fake_llm.requests) == 1
