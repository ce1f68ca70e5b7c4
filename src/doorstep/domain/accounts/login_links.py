"""One-time console sign-in links: ``/console/login/<token>`` signs one console user in once.

``doorstep demo`` prints one so a newcomer reaches the dispatch map with a single click; an
owner can hand one to a colleague who has not chosen a password yet.

* The token carries 256 random bits (:func:`secrets.token_urlsafe`); only its SHA-256 is stored
  and looked up by that hash, so the table leaks nothing usable (tokens are random: a slow hash
  buys nothing, as for API keys).
* A link works once, until ``expires_at`` (on the injected clock), and only while its user is
  active. An unknown, used, expired or retired token, or a deactivated user, all get the one
  :class:`LinkInvalid` answer, so a guess learns nothing.
* Opening the link (a GET) signs in at once: the link is printed on the operator's own terminal
  or handed over by a person, not sent where a chat app's preview would open it first. Issuing
  a new link for a user retires that user's unused ones.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ForeignKey, String, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from doorstep.clock import Clock
from doorstep.db.base import Base
from doorstep.db.types import UTCDateTime
from doorstep.domain.accounts.models import User
from doorstep.domain.errors import DomainError
from doorstep.ids import new_id, secret_digest

__all__ = [
    "LINK_PATH",
    "ConsoleLoginLink",
    "IssuedLink",
    "LinkInvalid",
    "issue_login_link",
    "redeem_login_link",
]

LINK_PATH = "/console/login/"


class ConsoleLoginLink(Base):
    """One issued console sign-in link (only the token's hash is kept)."""

    __tablename__ = "console_login_links"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"), index=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class LinkInvalid(DomainError):
    """One answer for every bad link: unknown, used, expired, retired or its user deactivated."""

    status_code = 400
    title = "Sign-in link not valid"
    type_slug = "console-sign-in-link-invalid"

    def __init__(self) -> None:
        super().__init__("this sign-in link is not valid or has expired")


@dataclass(frozen=True)
class IssuedLink:
    """The link as shown once to whoever asked for it; never stored in clear."""

    user_id: str
    url: str
    expires_at: datetime


def issue_login_link(
    session: Session, clock: Clock, user: User, *, base_url: str, ttl: timedelta
) -> IssuedLink:
    """A new single-use sign-in link for an active ``user``, valid for ``ttl``; the user's
    earlier unused links stop working."""
    if not user.active:
        raise LinkInvalid()
    if ttl <= timedelta(0):
        raise ValueError("a sign-in link needs a positive lifetime")
    now = clock.now()
    session.execute(
        update(ConsoleLoginLink)
        .where(ConsoleLoginLink.user_id == user.id, ConsoleLoginLink.used_at.is_(None))
        .values(expires_at=now)
        .execution_options(synchronize_session=False)
    )
    token = secrets.token_urlsafe(32)
    link = ConsoleLoginLink(
        id=new_id("cll", now),
        merchant_id=user.merchant_id,
        user_id=user.id,
        token_hash=secret_digest(token),
        created_at=now,
        expires_at=now + ttl,
    )
    session.add(link)
    session.flush()
    return IssuedLink(user.id, base_url.rstrip("/") + LINK_PATH + token, link.expires_at)


def redeem_login_link(session: Session, clock: Clock, token: str) -> User:
    """Use a link: its active user, once; :class:`LinkInvalid` for anything else."""
    now = clock.now()
    link = session.scalar(
        select(ConsoleLoginLink)
        .where(ConsoleLoginLink.token_hash == secret_digest(token))
        .with_for_update()
    )
    if link is None or link.used_at is not None or link.expires_at <= now:
        raise LinkInvalid()
    user = session.get(User, link.user_id)
    if user is None or not user.active or user.merchant_id != link.merchant_id:
        raise LinkInvalid()
    link.used_at = now
    user.last_login_at = now
    return user
