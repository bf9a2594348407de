"""JSON shape of an image: what ``POST .../images`` answers and ``image_added`` carries."""

from __future__ import annotations

from typing import Any

from web.images.repository import Image


def image_view(image: Image) -> dict[str, Any]:
    """The API's image object.

    Rendition URLs are paths relative to the service's base URL, as every path in the wire
    contract is; they never change for an image, but answer 404 once it is deleted, so they are
    cached privately and briefly (``IMAGESHARK_MEDIA_MAX_AGE_SECONDS``).
    """
    base = f"/media/{image.storage_key}"
    return {
        "id": image.id,
        "seq": image.seq,
        "caption": image.caption,
        "url": f"{base}/display.jpg",
        "thumb_url": f"{base}/thumb.jpg",
        "width": image.width,
        "height": image.height,
        "thumb_width": image.thumb_width,
        "thumb_height": image.thumb_height,
        "uploader_name": image.uploader_name,
        "participant_id": image.participant_id,
        "created_at": image.created_at.isoformat(),
        "status": image.status,
    }
