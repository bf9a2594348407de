"""The mails host accounts receive: address verification, a sign-up with a taken address,
password reset, and the digest of photos waiting for approval. Each is plain text with a
simple HTML alternative; links are absolute (the caller passes the service's base URL)."""

from __future__ import annotations

from html import escape
from urllib.parse import quote

from web.mail.mailer import OutgoingMail


def _link(base_url: str, path: str, token: str) -> str:
    return f"{base_url.rstrip('/')}{path}?token={quote(token, safe='')}"


def _html(paragraphs: list[str], link: str, label: str) -> str:
    body = "".join(f"<p>{escape(text)}</p>\n" for text in paragraphs)
    return f'{body}<p><a href="{escape(link)}">{escape(label)}</a></p>\n'


def verification_mail(to: str, base_url: str, token: str, hours: float) -> OutgoingMail:
    """The link confirming ``to`` is the account holder's: ``{base_url}/verify?token=...``.

    :param hours: how long the link works (``IMAGESHARK_VERIFICATION_HOURS``).
    """
    link = _link(base_url, "/verify", token)
    lines = [
        "Please confirm that this is your address for your ImageShark host account.",
        f"The link works once, for {hours:g} hours. If you did not sign up, ignore this mail.",
    ]
    return OutgoingMail(
        to=(to,),
        subject="Confirm your e-mail address for ImageShark",
        text="\n\n".join([*lines, link]) + "\n",
        html=_html(lines, link, "Confirm my address"),
    )


def taken_address_mail(to: str, base_url: str) -> OutgoingMail:
    """Told to the holder of an account when someone signs up with its address again (the
    sign-up answer does not say the address is taken)."""
    sign_in = f"{base_url.rstrip('/')}/signin"
    lines = [
        "Someone tried to sign up for ImageShark with this address, which already has an "
        "account. Nothing was changed.",
        "If it was you, sign in, or reset your password if you forgot it. If not, you can "
        "ignore this mail.",
    ]
    return OutgoingMail(
        to=(to,),
        subject="Someone tried to sign up with your address on ImageShark",
        text="\n\n".join([*lines, sign_in]) + "\n",
        html=_html(lines, sign_in, "Sign in"),
    )


def reset_mail(to: str, base_url: str, token: str, minutes: float) -> OutgoingMail:
    """The link to choose a new password: ``{base_url}/reset?token=...``.

    :param minutes: how long the link works (``IMAGESHARK_PASSWORD_RESET_MINUTES``).
    """
    link = _link(base_url, "/reset", token)
    lines = [
        "Someone asked to reset the password of your ImageShark host account.",
        f"The link works once, for {minutes:g} minutes, and signs you out everywhere. If you "
        "did not ask, ignore this mail: your password stays as it is.",
    ]
    return OutgoingMail(
        to=(to,),
        subject="Reset your ImageShark password",
        text="\n\n".join([*lines, link]) + "\n",
        html=_html(lines, link, "Choose a new password"),
    )


def pending_digest_mail(
    to: str, room_title: str, pending: int, host_url: str | None
) -> OutgoingMail:
    """Tells a room's owner that ``pending`` photos wait for approval, with the host page's
    absolute URL ``host_url`` (None: no link, the room list leads there)."""
    photos = "1 photo waits" if pending == 1 else f"{pending} photos wait"
    title = " ".join(room_title.split())  # one line: it goes into the subject
    lines = [f"{photos} for your approval in the room “{title}”."]
    if host_url is None:
        lines.append("Open the room's host page from your account's room list.")
        return OutgoingMail(
            to=(to,),
            subject=f"ImageShark: {photos} for approval in {title}",
            text="\n\n".join(lines) + "\n",
            html="".join(f"<p>{escape(text)}</p>\n" for text in lines),
        )
    return OutgoingMail(
        to=(to,),
        subject=f"ImageShark: {photos} for approval in {title}",
        text="\n\n".join([*lines, host_url]) + "\n",
        html=_html(lines, host_url, "Open the host page"),
    )
