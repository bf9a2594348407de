"""The image pipeline: from an uploaded file to upright, metadata-free sRGB JPEG renditions.

:class:`RenditionPool` is the entry point for the service (a process pool with a bounded
queue); :mod:`web.pipeline.formats` decides types from bytes; :mod:`web.pipeline.renditions`
holds the synchronous work done in each worker.
"""

from __future__ import annotations

from web.pipeline.formats import CorruptImage, ImageTooLarge, UnsupportedImageType
from web.pipeline.pool import PipelineBusy, RenditionPool
from web.pipeline.renditions import FullRenditionResult, RenditionResult, RenditionSpec

__all__ = [
    "CorruptImage",
    "FullRenditionResult",
    "ImageTooLarge",
    "PipelineBusy",
    "RenditionPool",
    "RenditionResult",
    "RenditionSpec",
    "UnsupportedImageType",
]
