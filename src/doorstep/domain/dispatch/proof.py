"""Proof-of-delivery images: photos and drawn signatures, checked and cleaned before they are
kept, and read back for the tracking page.

* The type comes from the bytes, never the file name or the declared content type: Pillow must
  open the data as JPEG, PNG, WebP or HEIC/HEIF (iPhone photos, read through the
  ``pillow-heif`` plug-in). Anything else, a truncated file, or an image over the pixel budget (a
  decompression bomb) is a 422.
* Over ``proof_max_bytes`` is a 413, before Pillow sees it.
* Every image is re-encoded from its pixels: EXIF (with its GPS position and the phone's
  make), XMP, ICC and comments are all gone. Photos are turned upright by their EXIF
  orientation first, scaled down to ``proof_max_side_px`` and saved as JPEG; signatures are
  saved as PNG (they are line drawings with transparency).
* The cleaned bytes are stored in the ``attachments`` row (``content``), in the same
  transaction as the delivery, so every server process can serve them (ADR 0007).
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass
from typing import Literal

from PIL import Image, ImageOps, UnidentifiedImageError
from pillow_heif import register_heif_opener
from sqlalchemy import select
from sqlalchemy.orm import Session, undefer

from doorstep.clock import Clock
from doorstep.domain.errors import DomainError, FieldError, Unprocessable
from doorstep.domain.feedback.models import Attachment
from doorstep.ids import new_id
from doorstep.settings import Settings

# HEIC/HEIF is what iPhones take by default ("High efficiency"); the pillow-heif plug-in (libheif)
# teaches Pillow to read it. Decoding applies the container's rotation, so the pixels come upright.
register_heif_opener()

ACCEPTED_FORMATS = frozenset({"JPEG", "PNG", "WEBP", "MPO", "HEIF"})
MAX_PIXELS = 40_000_000  # 40 megapixels: more than any phone camera, less than a bomb
Kind = Literal["pod", "signature", "attempt"]


class TooLarge(DomainError):
    status_code = 413
    title = "Too large"
    type_slug = "too-large"


@dataclass(frozen=True)
class CleanImage:
    content: bytes
    media_type: str
    width: int
    height: int
    source_format: str


def _refuse(field: str, message: str) -> Unprocessable:
    return Unprocessable(message, errors=[FieldError(field, message, "invalid_image")])


def clean_image(
    data: bytes, *, field: str, signature: bool, max_bytes: int, max_side: int
) -> CleanImage:
    """Check ``data`` is an accepted image and re-encode it without metadata."""
    if len(data) > max_bytes:
        raise TooLarge(
            f"{field} is {len(data)} bytes; the limit is {max_bytes}",
            errors=[FieldError(field, f"larger than {max_bytes} bytes", "too_large")],
        )
    if not data:
        raise _refuse(field, f"{field} is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as probe:
                fmt = probe.format or ""
                if fmt not in ACCEPTED_FORMATS:
                    raise _refuse(field, f"{field} must be a JPEG, PNG, WebP or HEIC image")
                if probe.width * probe.height > MAX_PIXELS:
                    raise _refuse(field, f"{field} has too many pixels")
                probe.load()
                image = ImageOps.exif_transpose(probe) if not signature else probe.copy()
    except Unprocessable:
        raise
    except (
        UnidentifiedImageError,
        OSError,
        SyntaxError,
        ValueError,
        Image.DecompressionBombError,
        Image.DecompressionBombWarning,
    ) as exc:
        raise _refuse(field, f"{field} is not a readable JPEG, PNG, WebP or HEIC image") from exc
    out = io.BytesIO()
    if signature:
        image = image.convert("RGBA")
        image.thumbnail((max_side, max_side))
        image.save(out, format="PNG", optimize=True)
        media_type = "image/png"
    else:
        image = image.convert("RGB")
        image.thumbnail((max_side, max_side))
        image.save(out, format="JPEG", quality=82, optimize=True)
        media_type = "image/jpeg"
    return CleanImage(out.getvalue(), media_type, image.width, image.height, fmt)


def store_image(
    session: Session,
    clock: Clock,
    *,
    merchant_id: str,
    order_id: str,
    stop_id: str | None,
    kind: Kind,
    image: CleanImage,
) -> Attachment:
    """Keep a cleaned image as an attachment of the order (and stop)."""
    now = clock.now()
    row = Attachment(
        id=new_id("att", now),
        merchant_id=merchant_id,
        order_id=order_id,
        stop_id=stop_id,
        kind=kind,
        content_type=image.media_type,
        size_bytes=len(image.content),
        sha256=hashlib.sha256(image.content).hexdigest(),
        meta={"width": image.width, "height": image.height, "source_format": image.source_format},
        content=image.content,
        created_at=now,
    )
    session.add(row)
    return row


def clean_upload(
    settings: Settings, data: bytes | None, *, field: str, signature: bool = False
) -> CleanImage | None:
    """An uploaded image cleaned with the settings' limits, or None when nothing was sent."""
    if data is None:
        return None
    return clean_image(
        data,
        field=field,
        signature=signature,
        max_bytes=settings.proof_max_bytes,
        max_side=settings.proof_max_side_px,
    )


def load_attachment(
    session: Session, merchant_id: str, order_id: str, kind: Kind
) -> tuple[bytes, str] | None:
    """The latest image of ``kind`` for one of the merchant's orders: (bytes, media type)."""
    row = session.scalar(
        select(Attachment)
        .where(
            Attachment.merchant_id == merchant_id,
            Attachment.order_id == order_id,
            Attachment.kind == kind,
        )
        .options(undefer(Attachment.content))
        .order_by(Attachment.created_at.desc(), Attachment.id.desc())
        .limit(1)
    )
    if row is None or row.content is None:
        return None
    return row.content, row.content_type


def load_proof_photo(
    session: Session, settings: Settings, merchant_id: str, order_id: str
) -> tuple[bytes, str] | None:
    """The proof-of-delivery photo of an order, for the tracking page (served only through
    the recipient's capability link): (JPEG bytes, ``image/jpeg``), or None."""
    del settings  # stored in the database: every process can serve it without the data dir
    return load_attachment(session, merchant_id, order_id, "pod")
