"""Hostile and malformed requests, each with the 4xx answer the service must give.

The replay test (``tests/web/test_hostile_requests.py``) sends every entry to an app holding a
room with an image, a joined guest and a second room with a passcode, and checks the status,
the error code and that nothing already stored changed. Paths and bodies are templates:

- ``{token}``: the open room; ``{locked}``: the room with a passcode;
- ``{image}``: the id of the room's one image; ``{image_arabic}``: that id in Arabic-Indic
  digits (which ``str.isdigit`` and ``int`` accept: a lax parser would act on the real image);
- ``{key}``: the image's storage key (its media folder).

``auth`` says whose credentials go with the request: ``"host"`` (the host key), ``"guest"`` (the
participant key) or None.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

JSON = {"content-type": "application/json"}
BOUNDARY = "corpusboundary7d1"
MULTIPART = {"content-type": f"multipart/form-data; boundary={BOUNDARY}"}
LONG_HOST = "h" * 2300 + ".example"
DEEP = 2000


@dataclass(frozen=True)
class Hostile:
    """One hostile request and its expected answer.

    :ivar name: what the entry tries, unique in the corpus.
    :ivar method: HTTP method.
    :ivar path: path and query, a template (see the module docstring).
    :ivar status: the expected 4xx status.
    :ivar code: the expected ``error.code``.
    :ivar body: the raw body (a template too).
    :ivar headers: extra request headers.
    :ivar auth: ``"host"``, ``"guest"`` or None.
    """

    name: str
    method: str
    path: str
    status: int
    code: str
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    auth: str | None = None


def _json(value: object) -> bytes:
    # ensure_ascii writes a lone surrogate as the escape "\ud800", as a hostile client would.
    return json.dumps(value, ensure_ascii=True).encode()


def _multipart(*, caption: bytes | None = None, close: bool = True, file: bytes = b"") -> bytes:
    parts = []
    if caption is not None:
        parts.append(
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="caption"\r\n\r\n'.encode()
            + caption
            + b"\r\n"
        )
    parts.append(
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="a.jpg"\r\n'
        "Content-Type: image/jpeg\r\n\r\n".encode()
        + file
        + b"\r\n"
    )
    body = b"".join(parts)
    return body + f"--{BOUNDARY}--\r\n".encode() if close else body


# A small valid JPEG is filled in by the replay test for multipart entries: ``{jpeg}`` is not
# a str.format field here, the test replaces this marker in the body bytes.
JPEG_MARKER = b"<<jpeg>>"


def _text_field_entries() -> list[Hostile]:
    entries: list[Hostile] = []
    bad_texts = {
        "lone surrogate": "a\ud800b",
        "low surrogate": "\udc00",
        "NUL": "a\u0000b",
        "escape character": "a\u001bb",
        "delete character": "a\u007fb",
    }
    for label, text in bad_texts.items():
        entries += [
            Hostile(
                f"room title with {label}",
                "POST",
                "/api/rooms",
                422,
                "invalid_title",
                _json({"title": text}),
                JSON,
            ),
            Hostile(
                f"changed title with {label}",
                "PATCH",
                "/api/rooms/{token}",
                422,
                "invalid_title",
                _json({"title": text}),
                JSON,
                "host",
            ),
            Hostile(
                f"guest name with {label}",
                "POST",
                "/api/rooms/{token}/participants",
                422,
                "invalid_name",
                _json({"name": text}),
                JSON,
            ),
            Hostile(
                f"changed guest name with {label}",
                "PATCH",
                "/api/rooms/{token}/me",
                422,
                "invalid_name",
                _json({"name": text}),
                JSON,
                "guest",
            ),
            Hostile(
                f"room passcode with {label}",
                "POST",
                "/api/rooms",
                422,
                "invalid_passcode",
                _json({"title": "t", "passcode": f"1234{text}"}),
                JSON,
            ),
            Hostile(
                f"changed passcode with {label}",
                "PATCH",
                "/api/rooms/{token}",
                422,
                "invalid_passcode",
                _json({"passcode": f"1234{text}"}),
                JSON,
                "host",
            ),
            Hostile(
                f"passcode attempt with {label}",
                "POST",
                "/api/rooms/{locked}/participants",
                403,
                "wrong_passcode",
                _json({"name": "Eve", "passcode": f"1234{text}"}),
                JSON,
            ),
            Hostile(
                f"caption with {label}",
                "POST",
                "/api/rooms/{token}/images",
                422,
                "invalid_caption",
                _multipart(caption=text.encode("utf-8", "surrogatepass"), file=JPEG_MARKER),
                MULTIPART,
                "guest",
            ),
        ]
    return entries


def _json_shape_entries() -> list[Hostile]:
    deep_array = b'{"title": ' + b"[" * DEEP + b"]" * DEEP + b"}"
    deep_object = b'{"a": ' * DEEP + b"1" + b"}" * DEEP
    json_bodies = [
        ("create room", "POST", "/api/rooms", None, 400),
        ("change room", "PATCH", "/api/rooms/{token}", "host", 400),
        ("join", "POST", "/api/rooms/{token}/participants", None, 400),
        ("rename", "PATCH", "/api/rooms/{token}/me", "guest", 400),
        ("link", "POST", "/api/rooms/{token}/links", "host", 400),
    ]
    entries: list[Hostile] = []
    for label, method, path, auth, _ in json_bodies:
        entries += [
            Hostile(
                f"{label}: arrays nested {DEEP} deep",
                method,
                path,
                400,
                "invalid_json",
                deep_array,
                JSON,
                auth,
            ),
            Hostile(
                f"{label}: objects nested {DEEP} deep",
                method,
                path,
                400,
                "invalid_json",
                deep_object,
                JSON,
                auth,
            ),
            Hostile(
                f"{label}: invalid UTF-8",
                method,
                path,
                400,
                "invalid_json",
                b'{"title": "\xff\xfe", "name": "\xc3"}',
                JSON,
                auth,
            ),
            Hostile(
                f"{label}: encoded surrogate bytes",
                method,
                path,
                400,
                "invalid_json",
                b'{"title": "\xed\xa0\x80", "name": "\xed\xa0\x80"}',
                JSON,
                auth,
            ),
            Hostile(
                f"{label}: truncated",
                method,
                path,
                400,
                "invalid_json",
                b'{"title": "a',
                JSON,
                auth,
            ),
            Hostile(
                f"{label}: duplicate fields",
                method,
                path,
                400,
                "invalid_json",
                b'{"title": "a", "name": "a", "path": "a", "title": "b", "name": "b", "path": "b"}',
                JSON,
                auth,
            ),
            Hostile(
                f"{label}: integer of 5000 digits",
                method,
                path,
                400,
                "invalid_json",
                b'{"max_images": ' + b"9" * 5000 + b"}",
                JSON,
                auth,
            ),
            Hostile(f"{label}: a JSON array", method, path, 422, "invalid_body", b"[]", JSON, auth),
            Hostile(
                f"{label}: a JSON string", method, path, 422, "invalid_body", b'"x"', JSON, auth
            ),
            Hostile(f"{label}: JSON null", method, path, 422, "invalid_body", b"null", JSON, auth),
            Hostile(f"{label}: a JSON number", method, path, 422, "invalid_body", b"7", JSON, auth),
            Hostile(
                f"{label}: over 16 KiB",
                method,
                path,
                413,
                "body_too_large",
                _json({"title": "a" * 20_000}),
                JSON,
                auth,
            ),
        ]
    return entries


def _setting_value_entries() -> list[Hostile]:
    values: list[tuple[str, object, str]] = [
        ("title", 5, "invalid_title"),
        ("title", ["a"], "invalid_title"),
        ("title", "   ", "invalid_title"),
        ("title", "a" * 201, "invalid_title"),
        ("uploads_open", "yes", "invalid_uploads_open"),
        ("uploads_open", 1, "invalid_uploads_open"),
        ("moderation", ["off"], "invalid_moderation"),
        ("passcode", 1234, "invalid_passcode"),
        ("passcode", "12", "invalid_passcode"),
        ("max_images", -1, "invalid_max_images"),
        ("max_images", 0, "invalid_max_images"),
        ("max_images", 1.5, "invalid_max_images"),
        ("max_images", 10**30, "invalid_max_images"),
        ("max_images", True, "invalid_max_images"),
        ("max_images", "5", "invalid_max_images"),
        ("max_uploads_per_guest", -(10**30), "invalid_max_uploads_per_guest"),
        ("expires_at", 5, "invalid_expires_at"),
        ("expires_at", "tomorrow", "invalid_expires_at"),
        ("expires_at", "2026-13-01T00:00:00+00:00", "invalid_expires_at"),
        ("expires_at", "0001-01-01T00:00:00-01:00", "invalid_expires_at"),
        ("expires_at", "0001-01-01T00:00:00+01:00", "invalid_expires_at"),
        ("expires_at", "9999-12-31T23:59:59-14:00", "invalid_expires_at"),
        ("expires_at", "9999-12-31T23:59:59+00:00", "invalid_expires_at"),
        ("expires_at", "2026-01-01T00:00:00", "invalid_expires_at"),
        ("wall_qr_size", None, "invalid_wall_qr_size"),
        ("surprise", 1, "unknown_field"),
    ]
    entries: list[Hostile] = []
    for name, value, code in values:
        entries.append(
            Hostile(
                f"create room with {name}={value!r:.40}",
                "POST",
                "/api/rooms",
                422,
                code,
                _json({"title": "t", **{name: value}}) if name != "title" else _json({name: value}),
                JSON,
            )
        )
        entries.append(
            Hostile(
                f"change room to {name}={value!r:.40}",
                "PATCH",
                "/api/rooms/{token}",
                422,
                code,
                _json({name: value}),
                JSON,
                "host",
            )
        )
    for body, label in ((b"NaN", "NaN"), (b"1e400", "1e400"), (b"-Infinity", "-Infinity")):
        entries.append(
            Hostile(
                f"max_images={label}",
                "PATCH",
                "/api/rooms/{token}",
                422,
                "invalid_max_images",
                b'{"max_images": ' + body + b"}",
                JSON,
                "host",
            )
        )
    entries += [
        Hostile(
            "join with a list for a name",
            "POST",
            "/api/rooms/{token}/participants",
            422,
            "invalid_name",
            _json({"name": ["Eve"]}),
            JSON,
        ),
        Hostile(
            "join with no body",
            "POST",
            "/api/rooms/{token}/participants",
            422,
            "invalid_name",
            headers=JSON,
        ),
        Hostile(
            "create room with no body", "POST", "/api/rooms", 422, "invalid_title", headers=JSON
        ),
        Hostile(
            "passcode attempt as an object",
            "POST",
            "/api/rooms/{locked}/participants",
            403,
            "wrong_passcode",
            _json({"name": "Eve", "passcode": {"a": 1}}),
            JSON,
        ),
        Hostile(
            "link for a list",
            "POST",
            "/api/rooms/{token}/links",
            422,
            "invalid_path",
            _json({"path": ["/api/rooms/{token}/archive.zip"]}),
            JSON,
            "host",
        ),
        Hostile(
            "link for an image id in superscript digits",
            "POST",
            "/api/rooms/{token}/links",
            422,
            "invalid_path",
            _json({"path": "/api/rooms/{token}/images/\u00b2/original"}),
            JSON,
            "host",
        ),
    ]
    return entries


UNICODE_NUMBERS = {
    "superscript two": "\u00b2",
    "circled one": "\u2460",
    "Arabic-Indic one": "\u0661",
    "fullwidth one": "\uff11",
    "5000 nines": "9" * 5000,
    "minus one": "-1",
    "a float": "1.5",
    "a plus sign": "+1",
    "a space": " 1",
    "hex": "0x10",
    "20 digits": "9" * 20,
}


def _number_parameter_entries() -> list[Hostile]:
    lists = [
        ("images", "/api/rooms/{token}/images?", None),
        ("my uploads", "/api/rooms/{token}/images?mine=1&", "guest"),
        ("events", "/api/rooms/{token}/events?", None),
        ("pending queue", "/api/rooms/{token}/pending?", "host"),
    ]
    entries: list[Hostile] = []
    for label, prefix, auth in lists:
        for number_label, number in UNICODE_NUMBERS.items():
            for param in ("after", "limit"):
                entries.append(
                    Hostile(
                        f"{label}: {param} as {number_label}",
                        "GET",
                        f"{prefix}{param}={number}",
                        422,
                        f"invalid_{param}",
                        auth=auth,
                    )
                )
        entries.append(
            Hostile(f"{label}: limit 0", "GET", f"{prefix}limit=0", 422, "invalid_limit", auth=auth)
        )
    image_urls = [
        ("delete", "DELETE", "/api/rooms/{token}/images/{id}", "host"),
        ("approve", "POST", "/api/rooms/{token}/images/{id}/approve", "host"),
        ("reject", "POST", "/api/rooms/{token}/images/{id}/reject", "host"),
        ("download", "GET", "/api/rooms/{token}/images/{id}/download", "guest"),
        ("original", "GET", "/api/rooms/{token}/images/{id}/original", "host"),
    ]
    ids = {
        **{k: v for k, v in UNICODE_NUMBERS.items() if k != "5000 nines"},
        "5000 nines": "9" * 5000,
        "the image's id in Arabic-Indic digits": "{image_arabic}",
        "the image's id with a NUL": "{image}%00",
    }
    for label, method, path, auth in image_urls:
        for id_label, image_id in ids.items():
            entries.append(
                Hostile(
                    f"{label} image {id_label}",
                    method,
                    path.replace("{id}", image_id),
                    404,
                    "image_not_found",
                    auth=auth,
                )
            )
    return entries


def _host_entries() -> list[Hostile]:
    hosts = {
        "2300 characters": LONG_HOST,
        "a path": "evil.example/phish?x=",
        "a user part": "user@evil.example",
        "spaces": "evil example",
        "a bad port": "example.org:http",
        "an unclosed IPv6 bracket": "[::1",
    }
    urls = [
        ("QR PNG", "GET", "/api/rooms/{token}/qr.png", None, b""),
        ("QR SVG", "GET", "/api/rooms/{token}/qr.svg", None, b""),
        ("room", "GET", "/api/rooms/{token}", None, b""),
        ("host view", "GET", "/api/rooms/{token}/host", "host", b""),
        ("new room", "POST", "/api/rooms", None, _json({"title": "t"})),
        ("join page", "GET", "/r/{token}", None, b""),
        ("wall page", "GET", "/r/{token}/wall", None, b""),
    ]
    entries: list[Hostile] = []
    for host_label, host in hosts.items():
        for label, method, path, auth, body in urls:
            entries.append(
                Hostile(
                    f"{label} with a Host of {host_label}",
                    method,
                    path,
                    400,
                    "invalid_host",
                    body,
                    {"host": host, **JSON},
                    auth,
                )
            )
    return entries


def _multipart_entries() -> list[Hostile]:
    return [
        Hostile(
            "upload without the closing boundary",
            "POST",
            "/api/rooms/{token}/images",
            400,
            "malformed_multipart",
            _multipart(file=JPEG_MARKER, close=False),
            MULTIPART,
            "guest",
        ),
        Hostile(
            "upload cut in the part headers",
            "POST",
            "/api/rooms/{token}/images",
            400,
            "malformed_multipart",
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="fi'.encode(),
            MULTIPART,
            "guest",
        ),
        Hostile(
            "upload of only the opening boundary",
            "POST",
            "/api/rooms/{token}/images",
            400,
            "malformed_multipart",
            f"--{BOUNDARY}\r\n".encode(),
            MULTIPART,
            "guest",
        ),
        Hostile(
            "upload with an empty body",
            "POST",
            "/api/rooms/{token}/images",
            400,
            "malformed_multipart",
            b"",
            MULTIPART,
            "guest",
        ),
        Hostile(
            "upload with a caption of invalid UTF-8",
            "POST",
            "/api/rooms/{token}/images",
            422,
            "invalid_caption",
            _multipart(caption=b"\xff\xfe", file=JPEG_MARKER),
            MULTIPART,
            "guest",
        ),
        Hostile(
            "upload without a boundary parameter",
            "POST",
            "/api/rooms/{token}/images",
            415,
            "multipart_required",
            _multipart(file=JPEG_MARKER),
            {"content-type": "multipart/form-data"},
            "guest",
        ),
    ]


def _path_entries() -> list[Hostile]:
    return [
        Hostile("room token of invalid UTF-8", "GET", "/api/rooms/%ff%fe", 404, "room_not_found"),
        Hostile("room token with a NUL", "GET", "/api/rooms/{token}%00", 404, "room_not_found"),
        Hostile(
            "room token of 5000 characters",
            "GET",
            "/api/rooms/" + "a" * 5000,
            404,
            "room_not_found",
        ),
        Hostile("media key with a NUL", "GET", "/media/{key}%00/display.jpg", 404, "not_found"),
        Hostile("media name with a NUL", "GET", "/media/{key}/display.jpg%00", 404, "not_found"),
        Hostile("media key of invalid UTF-8", "GET", "/media/%ff/display.jpg", 404, "not_found"),
        Hostile("media original", "GET", "/media/{key}/original", 404, "not_found"),
        Hostile(
            "download with a signature of invalid UTF-8",
            "GET",
            "/api/rooms/{token}/images/{image}/download?signature=%ff%00",
            403,
            "invalid_link",
        ),
        Hostile(
            "archive with a 5000-character signature",
            "GET",
            "/api/rooms/{token}/archive.zip?signature=" + "a" * 5000,
            403,
            "invalid_link",
        ),
    ]


CORPUS: list[Hostile] = [
    *_text_field_entries(),
    *_json_shape_entries(),
    *_setting_value_entries(),
    *_number_parameter_entries(),
    *_host_entries(),
    *_multipart_entries(),
    *_path_entries(),
]
"""Every hostile request, each expecting a 4xx with the contract's error body."""

assert len({entry.name for entry in CORPUS}) == len(CORPUS), "corpus entry names must be unique"
