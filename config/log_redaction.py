"""A logging filter that keeps personal data and secrets out of log lines.

Log sites are written not to include phone numbers, transcripts, recording URLs or tokens; this filter
is the safety net for what still slips through (an exception's message quoting a number, a library's
own log line). It rewrites the formatted message and the exception text of every record it sees.
"""

from __future__ import annotations

import logging
import re

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # Twilio recording and media URLs (they play the voicemail to anyone holding the account's credentials).
    (re.compile(r"https?://[^\s'\"]*/(?:Recordings|Media|Transcriptions)/[^\s'\"]*"), "[recording-url]"),
    # Backstop API tokens, bearer credentials and password-reset or sign-in links.
    (re.compile(r"\bbst_[A-Za-z0-9_\-]{8,}"), "[token]"),
    (re.compile(r"(?i)\b(bearer|token|authorization)([\s:=]+)[A-Za-z0-9_\-.~+/]{8,}=*"), r"\1\2[token]"),
    (re.compile(r"https?://[^\s'\"]*/(?:password/reset|reset|login/code|confirm-email)/[^\s'\"]*"), "[auth-link]"),
    # Phone numbers: E.164 (separators allowed after the +) and bare runs of 10 to 15 digits.
    (re.compile(r"\+\d[\d ().\-]{6,}\d"), "[phone]"),
    (re.compile(r"(?<![\w.])\d{10,15}(?![\w.])"), "[phone]"),
    # Long free text in quoted form fields Twilio posts (transcripts).
    (re.compile(r"('TranscriptionText':\s*\[?)'[^']*'"), r"\1'[transcript]'"),
)


def redact(text: str) -> str:
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: let the handler report it as usual
            return True
        record.msg, record.args = redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True
