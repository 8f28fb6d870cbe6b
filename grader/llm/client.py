"""OpenAIFeedback: reviews answers through any OpenAI-compatible chat-completions server.

One review is one request (plus retries, plus at most one repair request):

* structured output: `response_format` json_schema where the server takes it, else
  json_object, else plain text from which the first JSON object is extracted; the mode that
  worked is remembered for the next requests;
* the reply is validated with pydantic (`ReviewReply`); an invalid one gets ONE repair
  request that sends the validation error back;
* temperature 0 and a fixed seed; for llama.cpp also `cache_prompt: false` (its prompt cache
  made the first reply differ from later ones);
* 429 (Retry-After honoured), 408/409, 5xx, timeouts and dropped connections are retried
  by tenacity with exponential backoff and jitter; the openai client's own retries are off
  so every try is counted;
* validated replies are cached on disk; every error text is scrubbed of the API key;
* nothing raises out of `review()` for a network or protocol fault: the review carries the
  error instead and the answer keeps its deterministic score.
"""

from __future__ import annotations

import copy
import email.utils
import json
import threading
import time
from collections.abc import Callable
from typing import TypeVar
from urllib.parse import urlparse

import openai
from pydantic import BaseModel, Field, ValidationError
from tenacity import Retrying, RetryCallState, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from grader.errors import ConfigError
from grader.llm import prompt as P
from grader.llm.base import LLMReview
from grader.llm.cache import ReplyCache, request_key
from grader.llm.grounding import ground
from grader.llm.guard import looks_hostile
from grader.llm.options import LLMOptions
from grader.llm.schema import ReviewReply, reply_json_schema
from grader.llm.scrub import scrub
from grader.models import GradeResult, Question, Rubric

M = TypeVar("M", bound=BaseModel)

MODES = ("json_schema", "json_object", "text")
DUMMY_KEY = "not-needed"
OPENAI_URL = "https://api.openai.com/v1"


class InvalidReply(ValueError):
    """The server answered, but not with a valid review."""


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, (openai.APITimeoutError, openai.APIConnectionError)):
        return True
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code in (408, 409, 429) or exc.status_code >= 500
    return False


def retry_after(exc: BaseException | None) -> float | None:
    """Seconds the server asked us to wait (Retry-After / retry-after-ms), if it did."""
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if not headers:
        return None
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if value else None
        if parsed is None:
            return None
        return max(0.0, parsed.timestamp() - time.time())


def extract_json(text: str) -> object:
    """The reply as JSON: the whole text, else the first JSON object inside it."""
    s = (text or "").strip()
    try:
        return json.loads(s)
    except json.JSONDecodeError:
        pass
    dec = json.JSONDecoder()
    i = s.find("{")
    while i >= 0:
        try:
            obj, _ = dec.raw_decode(s, i)
            if isinstance(obj, dict):
                return obj
        except json.JSONDecodeError:
            pass
        i = s.find("{", i + 1)
    raise InvalidReply("the reply holds no JSON object")


def validate_reply(text: str | None, model: type[M]) -> M:
    """The JSON object in a reply text as `model`; raises InvalidReply with a message fit to
    send back to the LLM (at most 8 field errors)."""
    if not text or not text.strip():
        raise InvalidReply("the reply was empty")
    obj = extract_json(text)
    if not isinstance(obj, dict):
        raise InvalidReply("the reply must be a JSON object")
    try:
        return model.model_validate(obj)
    except ValidationError as exc:
        errs = "; ".join(
            f"{'.'.join(str(x) for x in e['loc']) or '(root)'}: {e['msg']}" for e in exc.errors()[:8]
        )
        raise InvalidReply(errs) from None


def parse_reply(text: str | None, rubric: Rubric | None) -> ReviewReply:
    """Validate a reply text; raises InvalidReply with a message fit to send back."""
    reply = validate_reply(text, ReviewReply)
    if rubric and not reply.concepts:
        raise InvalidReply("concepts: list every rubric concept with its status")
    return reply


class Tally(BaseModel):
    """What the requests behind one result cost and how they went (added to as they are made)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached: int = Field(default=0, description="Replies served from the cache.")
    repaired: bool = False
    response_format: str | None = None

    def add(self, prompt_tokens: int, completion_tokens: int, response_format: str | None = None) -> None:
        self.prompt_tokens += prompt_tokens
        self.completion_tokens += completion_tokens
        if response_format is not None:
            self.response_format = response_format


def server_kind(base_url: str | None, setting: str) -> str:
    """openai | llamacpp | ollama | vllm | generic (see LLMOptions.llm_server)."""
    if setting != "auto":
        return setting
    if not base_url:
        return "openai"
    u = urlparse(base_url)
    host, port = (u.hostname or "").lower(), u.port
    if host.endswith("openai.com") or host.endswith("openai.azure.com"):
        return "openai"
    if "llama" in base_url.lower() or port in (8080, 8088):
        return "llamacpp"
    if port == 11434 or "ollama" in base_url.lower():
        return "ollama"
    return "generic"


class OpenAIFeedback:
    """A FeedbackProvider over the `openai` client (OpenAI, Ollama, vLLM, llama.cpp, ...)."""

    def __init__(
        self,
        *,
        model: str,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float = 60.0,
        retries: int = 3,
        options: LLMOptions | None = None,
        cache: ReplyCache | None = None,
    ):
        self.model = model
        self.base_url = base_url
        self._key = api_key or DUMMY_KEY
        self.timeout = timeout
        self.retries = retries
        self.options = options or LLMOptions()
        self.cache = cache
        self.kind = server_kind(base_url, self.options.llm_server)
        self._client = openai.OpenAI(
            api_key=self._key, base_url=base_url or OPENAI_URL, timeout=timeout, max_retries=0
        )  # base_url always explicit: an empty OPENAI_BASE_URL in the environment must not win
        self._mode = 0  # index into MODES; lowered when a server refuses a response_format
        self._lock = threading.Lock()

    def __repr__(self) -> str:  # never the key
        return f"OpenAIFeedback(model={self.model!r}, base_url={self.base_url!r})"

    @classmethod
    def from_settings(cls, settings, *, use_cache: bool = True, options: LLMOptions | None = None):
        """The provider the settings describe; ConfigError naming what is missing."""
        key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
        base_url = settings.openai_base_url
        if not base_url and not key:
            raise ConfigError(
                "--llm needs OPENAI_BASE_URL (an OpenAI-compatible server, e.g. "
                "http://127.0.0.1:8088/v1) or OPENAI_API_KEY (for api.openai.com)"
            )
        if not settings.llm_model:
            raise ConfigError(
                "--llm needs GRADER_LLM_MODEL (the model name on the server, e.g. gpt-4o-mini)"
            )
        cache = ReplyCache(settings.cache_dir / "llm.sqlite") if use_cache else None
        return cls(
            model=settings.llm_model, base_url=base_url, api_key=key,
            timeout=settings.llm_timeout, retries=settings.llm_retries,
            options=options, cache=cache,
        )

    def reseeded(self, seed: int) -> "OpenAIFeedback":
        """The same provider asking with another seed and no cache (`--repeat`): it shares
        the HTTP client, the key and the response format learned so far."""
        other = copy.copy(self)
        other.options = self.options.model_copy(update={"llm_seed": seed})
        other.cache = None
        return other

    # ------------------------------------------------------------------ requests

    def params(self) -> dict:
        """Sampling parameters of every request (temperature 0, the seed, the token limit)."""
        p: dict = {"temperature": 0, "seed": self.options.llm_seed}
        if self.kind == "openai":
            p["max_completion_tokens"] = self.options.llm_max_tokens
        else:
            p["max_tokens"] = self.options.llm_max_tokens
        if self.kind == "llamacpp":
            p["extra_body"] = {"cache_prompt": False}
        return p

    def request_key(self, question: Question, rubric: Rubric | None, answer: str) -> str:
        """The cache key of this review: server, model, full prompt, parameters, schema."""
        return request_key({
            "v": P.PROMPT_VERSION,
            "server": self.base_url or OPENAI_URL,
            "model": self.model,
            "messages": P.build_messages(question, rubric, answer),
            "params": self.params(),
            "schema": self._schema(rubric, P.answer_text(answer)),
        })

    def _schema(self, rubric: Rubric | None, answer: str) -> dict:
        """The reply schema; for grammar-based servers quotes are the answer's sentences."""
        names = [c.name for c in rubric.concepts] if rubric else []
        if self.kind == "openai":
            return reply_json_schema(names)
        return reply_json_schema(names, bounded=True, quotes=P.quotable(answer))

    def is_cached(self, question: Question, rubric: Rubric | None, answer: str) -> bool:
        return self.cache is not None and self.request_key(question, rubric, answer) in self.cache

    def requests_needed(self, question: Question, rubric: Rubric | None, answer: str) -> int:
        """1, or 0 when the reply is cached (`--dry-run`)."""
        return 0 if self.is_cached(question, rubric, P.answer_text(answer)) else 1

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        ra = retry_after(exc)
        if ra is not None:
            return min(ra, self.options.llm_retry_after_max)
        o = self.options
        return wait_exponential_jitter(multiplier=o.llm_backoff, max=o.llm_backoff_max,
                                       jitter=o.llm_backoff)(state)

    def _create(self, messages: list[dict], mode: str, schema: dict, counter: list[int], name: str = "answer_review"):
        kwargs = dict(model=self.model, messages=messages, **self.params())
        if mode == "json_schema":
            kwargs["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": name, "strict": True, "schema": schema},
            }
        elif mode == "json_object":
            kwargs["response_format"] = {"type": "json_object"}

        def once():
            counter[0] += 1
            return self._client.chat.completions.create(**kwargs)

        retrying = Retrying(
            stop=stop_after_attempt(self.retries + 1), wait=self._wait,
            retry=retry_if_exception(_retryable), reraise=True,
        )
        return retrying(once)

    def complete(self, messages: list[dict], schema: dict, counter: list[int], name: str = "answer_review"):
        """(text, prompt tokens, completion tokens, mode); falls back across MODES on 400/422."""
        start = self._mode
        for i in range(start, len(MODES)):
            try:
                resp = self._create(messages, MODES[i], schema, counter, name)
            except (openai.BadRequestError, openai.UnprocessableEntityError):
                if i == len(MODES) - 1:
                    raise
                continue
            if i != start:
                with self._lock:
                    self._mode = max(self._mode, i)
            usage = getattr(resp, "usage", None)
            choice = resp.choices[0] if resp.choices else None
            text = choice.message.content if choice and choice.message else None
            return (
                text,
                int(getattr(usage, "prompt_tokens", 0) or 0),
                int(getattr(usage, "completion_tokens", 0) or 0),
                MODES[i],
            )
        raise AssertionError("unreachable")

    def error_text(self, exc: BaseException, tries: int) -> str:
        """One line saying why a request failed, with the API key scrubbed out."""
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        if isinstance(exc, openai.APIStatusError):
            name = f"HTTP {exc.status_code}"
        elif isinstance(exc, openai.APITimeoutError):
            name, msg = "timeout", f"no reply within {self.timeout:g}s"
        elif isinstance(exc, openai.APIConnectionError):
            name = "connection failed"
        elif isinstance(exc, InvalidReply):
            name = "invalid reply"
        else:
            name = type(exc).__name__
        text = f"{name}: {msg}"[:300] if msg else name
        if tries > 1:
            text += f" (after {tries} requests)"
        return scrub(text, self.secret)

    @property
    def secret(self) -> str | None:
        """The API key to scrub from anything shown (None when there is none)."""
        return self._key if self._key != DUMMY_KEY else None

    # ------------------------------------------------------------------ review

    def review(
        self, question: Question, rubric: Rubric | None, answer: str, result: GradeResult
    ) -> LLMReview:
        """Review one graded answer; never raises for network or protocol faults."""
        text = P.answer_text(answer)
        hostile = looks_hostile(text)
        base = dict(model=self.model, injection=hostile, seed=self.options.llm_seed)
        if result.band == "no answer" or not text.strip():
            return LLMReview(**base, skipped="no answer")
        counter = [0]
        try:
            return self._review(question, rubric, text, base, counter, result)
        except Exception as exc:  # noqa: BLE001 - the promise: the run goes on, error recorded
            return LLMReview(**base, error=self.error_text(exc, counter[0]), requests=counter[0])

    def _review(self, question, rubric, text, base, counter, result=None) -> LLMReview:
        key = self.request_key(question, rubric, text) if self.cache is not None else None
        tally = Tally()
        try:
            reply = self.ask(P.build_messages(question, rubric, text), self._schema(rubric, text),
                             lambda content: parse_reply(content, rubric), counter, tally, key=key)
        except InvalidReply as exc:
            return LLMReview(
                **base, error=self.error_text(exc, counter[0]), requests=counter[0],
                prompt_tokens=tally.prompt_tokens, completion_tokens=tally.completion_tokens, repaired=True,
                invalid=True, response_format=tally.response_format,
            )
        if tally.cached:
            return self._finish(base, reply, rubric, text, result, prompt_tokens=tally.prompt_tokens,
                                completion_tokens=tally.completion_tokens, cached=True, requests=0)
        return self._finish(base, reply, rubric, text, result, prompt_tokens=tally.prompt_tokens,
                            completion_tokens=tally.completion_tokens, cached=False, requests=counter[0],
                            repaired=tally.repaired, response_format=tally.response_format)

    def ask(self, messages: list[dict], schema: dict, parse: Callable[[str | None], M], counter: list[int],
            tally: "Tally", *, key: str | None, name: str = "answer_review", echo: int = 8000) -> M:
        """One validated reply: from the cache under `key`, else asked, with ONE repair request
        for an invalid reply (echoing at most `echo` characters of it); its tokens, whether it
        was cached or repaired, and the response format are added to `tally`.  Raises
        InvalidReply when the repaired reply is invalid too."""
        hit = self.cache.get(key) if key and self.cache is not None else None
        if hit:
            try:
                reply = parse(hit[0])
            except InvalidReply:
                pass  # an unreadable row (older version): ask again
            else:
                tally.add(hit[1], hit[2])
                tally.cached += 1
                return reply
        content, pt, ct, mode = self.complete(messages, schema, counter, name)
        tally.add(pt, ct, mode)
        try:
            reply = parse(content)
        except InvalidReply as exc:
            tally.repaired = True
            messages = messages + [{"role": "assistant", "content": (content or "")[:echo]},
                                   P.repair_message(str(exc))]
            content, pt2, ct2, mode = self.complete(messages, schema, counter, name)
            tally.add(pt2, ct2, mode)
            pt, ct = pt + pt2, ct + ct2
            try:
                reply = parse(content)
            except InvalidReply as exc2:
                raise InvalidReply(f"{exc2} (after one repair)") from None
        if key and self.cache is not None:
            self.cache.put(key, reply.model_dump_json(), pt, ct)
        return reply

    @staticmethod
    def _finish(base, reply: ReviewReply, rubric, text, result=None, **extra) -> LLMReview:
        g = ground(reply, rubric, text, result)
        return LLMReview(
            **base, reply=reply, llm_suspects_injection=reply.injection_suspected, verdicts=g.verdicts, unsupported=g.unsupported,
            unknown_concepts=g.unknown, misconceptions=g.misconceptions, **extra,
        )
