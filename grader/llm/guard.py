"""Injection checks beyond grader.scoring.flags: payloads hidden in encodings.

`flags.looks_injected` reads the answer as written.  An answer can also carry its
instructions base64-encoded, in rot13 or in leetspeak, for a model that decodes them; this
module decodes such layers and runs the same check on the result.  Used on every answer
sent to an LLM: a positive result means the LLM can never raise the answer's score.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re

from grader.scoring.flags import looks_injected

_B64 = re.compile(r"[A-Za-z0-9+/_-]{16,}={0,2}")
_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a",
                       "$": "s", "|": "l", "!": "i", "8": "b"})


def _b64_texts(answer: str) -> list[str]:
    out = []
    for m in _B64.finditer(answer):
        chunk = m.group(0)
        chunk += "=" * (-len(chunk) % 4)
        for decode in (base64.b64decode, base64.urlsafe_b64decode):
            try:
                raw = decode(chunk)
            except (binascii.Error, ValueError):
                continue
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                continue
            if text.isprintable() or all(c.isprintable() or c.isspace() for c in text):
                out.append(text)
                break
    return out


def decoded_layers(answer: str) -> list[str]:
    """The answer as rot13 and leetspeak would read it, and every base64 run decoded."""
    return [codecs.decode(answer, "rot13"), answer.translate(_LEET), *_b64_texts(answer)]


def looks_hostile(answer: str) -> bool:
    """looks_injected on the answer itself or on any decoded layer of it."""
    if looks_injected(answer):
        return True
    return any(looks_injected(t) for t in decoded_layers(answer))
