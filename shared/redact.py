"""One place that hides secrets in URLs and text before they are printed or logged.

A Redis password can sit in three spots of ``OPTBOT_REDIS_URL``: ``redis://:pw@host``,
``redis://user:pw@host`` and ``?password=pw`` (redis-py reads all three). Every
banner, ``optbot config`` line, error message and log line goes through here, so a
new spot is fixed once. The user name stays visible: it says which ACL user is meant.
"""

from __future__ import annotations

import re

MASK = "***"
# A URL with a scheme, up to the next whitespace or quote.
_URL = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>]+")
# password=… (or passwd/pwd/token/secret) in a query or a key=value text.
_PAIR = re.compile(r"(?i)\b(password|passwd|pwd|token|secret)=([^&\s'\"]+)")


def _mask_pairs(text: str) -> str:
    return _PAIR.sub(lambda m: f"{m.group(1)}={MASK}", text)


def redact_url(url: str) -> str:
    """``url`` with any password (userinfo or query) replaced by ``***``.

    Userinfo ends at the last ``@`` before the query, not at the first ``/``: a
    password with an unescaped ``/`` is still masked whole.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        return _mask_pairs(url)
    query_at = min((i for i in (rest.find("?"), rest.find("#")) if i >= 0), default=len(rest))
    at = rest.rfind("@", 0, query_at)
    if at >= 0:
        user, colon, _password = rest[:at].partition(":")
        rest = (f"{user}:{MASK}" if colon else rest[:at]) + rest[at:]
    return f"{scheme}://{_mask_pairs(rest)}"


def redact_text(text: str) -> str:
    """``text`` with every URL in it redacted and ``password=…`` pairs masked."""
    if "://" not in text and "=" not in text:
        return text
    return _mask_pairs(_URL.sub(lambda m: redact_url(m.group(0)), text))
