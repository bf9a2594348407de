"""What a session's device is, in a few words, from its ``User-Agent`` header.

Shown in the session list (``GET /api/me/sessions``) so a host recognises each signed-in
browser: "Firefox on Android", "Safari on iPhone", "curl". Only the summary is stored, not
the header. The checks are ordered: many browsers name others in their header (Chrome's says
"Safari", Edge's says "Chrome"), so the more specific token is looked for first.
"""

from __future__ import annotations

import re

MAX_DEVICE_CHARS = 100
UNKNOWN_DEVICE = "Unknown device"

_BROWSERS = (
    ("Edge", re.compile(r"\bEdg(?:e|A|iOS)?/")),
    ("Opera", re.compile(r"\b(?:OPR|Opera)/")),
    ("Samsung Internet", re.compile(r"\bSamsungBrowser/")),
    ("Firefox", re.compile(r"\b(?:Firefox|FxiOS)/")),
    ("Chrome", re.compile(r"\b(?:Chrome|CriOS|Chromium)/")),
    ("Safari", re.compile(r"\bSafari/")),
)
_SYSTEMS = (
    ("iPhone", re.compile(r"\biPhone\b")),
    ("iPad", re.compile(r"\biPad\b")),
    ("Android", re.compile(r"\bAndroid\b")),
    ("ChromeOS", re.compile(r"\bCrOS\b")),
    ("Windows", re.compile(r"\bWindows\b")),
    ("macOS", re.compile(r"\bMac OS X\b|\bMacintosh\b")),
    ("Linux", re.compile(r"\bLinux\b")),
)
_PROGRAM = re.compile(r"^([A-Za-z][A-Za-z0-9._-]{0,40})/")


def device_summary(user_agent: str | None) -> str:
    """A short name for the device of ``user_agent``.

    :param user_agent: the ``User-Agent`` header, or None.
    :returns: ``"<browser> on <system>"`` when both are recognised, either alone when only one
        is, a program's name (``"curl"``, ``"python-httpx"``) for non-browsers, else
        :data:`UNKNOWN_DEVICE`; at most :data:`MAX_DEVICE_CHARS` characters.
    """
    text = (user_agent or "").strip()[:512]
    if not text:
        return UNKNOWN_DEVICE
    browser = next((name for name, pattern in _BROWSERS if pattern.search(text)), None)
    system = next((name for name, pattern in _SYSTEMS if pattern.search(text)), None)
    if browser and system:
        return f"{browser} on {system}"
    if browser or system:
        return browser or system or UNKNOWN_DEVICE
    program = _PROGRAM.match(text)
    if program and program.group(1) != "Mozilla":
        return program.group(1)[:MAX_DEVICE_CHARS]
    return UNKNOWN_DEVICE
