"""Passwordless sign-in for drivers: a one-time link and a 6-digit code, issued together from
the console or the API, valid ``driver_login_ttl_s``, used at most once, stored hashed.

* The link carries 256 random bits; only their SHA-256 is stored, looked up in constant time
  by hash. Opening it shows a "Sign in" button (a POST), so a chat app's link preview that
  fetches the URL does not use it up.
* The code is for typing on the phone: six digits from :mod:`secrets`, stored as an HMAC with
  the server's secret key (a plain hash of a 6-digit number is reversed in microseconds).
  Issuing a new sign-in for a driver retires the driver's previous unused one.
* Wrong codes are rate-limited per client and per driver: :class:`CodeThrottle` locks a client
  out after ``driver_login_max_failures`` wrong codes; and since a code names no driver, every
  wrong code also counts against each code still live, which stops working after the same
  number of failures (a guesser spraying codes at everyone burns the codes, never the links;
  the dispatcher issues new ones). So at most ``max_failures`` guesses are ever made against
  one code.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ForeignKey, Integer, String, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from doorstep.clock import Clock
from doorstep.db.base import Base
from doorstep.db.types import UTCDateTime
from doorstep.domain.accounts.users import LoginThrottle
from doorstep.domain.dispatch.models import Driver
from doorstep.domain.dispatch.resources import access_driver
from doorstep.domain.errors import Conflict, DomainError
from doorstep.ids import new_id, secret_digest

CODE_DIGITS = 6
LINK_PATH = "/driver/login/"


class DriverLogin(Base):
    """One issued sign-in (link + code) for a driver."""

    __tablename__ = "driver_logins"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"), index=True)
    driver_id: Mapped[str] = mapped_column(ForeignKey("drivers.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    code_hash: Mapped[str] = mapped_column(String(64), index=True)
    failed_attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class SignInFailed(DomainError):
    """One answer for every bad link or code: unknown, expired, used or retired."""

    status_code = 400
    title = "Sign-in failed"
    type_slug = "driver-sign-in-failed"


@dataclass(frozen=True)
class IssuedLogin:
    """What the dispatcher hands the driver; shown once, never stored in clear."""

    driver_id: str
    url: str
    code: str
    expires_at: datetime


def _code_hash(secret_key: str, code: str) -> str:
    return hmac.new(secret_key.encode(), f"driver-code:{code}".encode(), "sha256").hexdigest()


def issue_login(
    session: Session,
    clock: Clock,
    merchant_id: str,
    driver_id: str,
    *,
    secret_key: str,
    base_url: str,
    ttl: timedelta,
) -> IssuedLogin:
    """A new link and code for one of the merchant's active drivers (404 for anyone else's)."""
    driver = access_driver(session, merchant_id, driver_id)
    if not driver.active:
        raise Conflict("the driver is deactivated; activate them before they sign in")
    now = clock.now()
    session.execute(
        update(DriverLogin)
        .where(DriverLogin.driver_id == driver.id, DriverLogin.used_at.is_(None))
        .values(expires_at=now)
        .execution_options(synchronize_session=False)
    )
    live_codes = set(
        session.scalars(
            select(DriverLogin.code_hash).where(
                DriverLogin.used_at.is_(None), DriverLogin.expires_at > now
            )
        )
    )
    while True:  # six digits that no live sign-in uses, so a code names one driver
        code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
        if _code_hash(secret_key, code) not in live_codes:
            break
    token = secrets.token_urlsafe(32)
    login = DriverLogin(
        id=new_id("dlg", now),
        merchant_id=merchant_id,
        driver_id=driver.id,
        token_hash=secret_digest(token),
        code_hash=_code_hash(secret_key, code),
        failed_attempts=0,
        created_at=now,
        expires_at=now + ttl,
    )
    session.add(login)
    session.flush()
    return IssuedLogin(driver.id, base_url.rstrip("/") + LINK_PATH + token, code, login.expires_at)


def _usable(login: DriverLogin | None, now: datetime) -> DriverLogin:
    """A live, unused sign-in. Wrong codes never retire a link: it carries 256 random bits."""
    if login is None or login.used_at is not None or login.expires_at <= now:
        raise SignInFailed("this sign-in link or code is not valid; ask for a new one")
    return login


def _active_driver(session: Session, login: DriverLogin) -> Driver:
    driver = session.get(Driver, login.driver_id)
    if driver is None or not driver.active or driver.merchant_id != login.merchant_id:
        raise SignInFailed("this sign-in link or code is not valid; ask for a new one")
    return driver


def peek_link(session: Session, clock: Clock, token: str) -> Driver:
    """The driver a link would sign in, without using it (for the confirmation page)."""
    login = session.scalar(
        select(DriverLogin).where(DriverLogin.token_hash == secret_digest(token))
    )
    return _active_driver(session, _usable(login, clock.now()))


def redeem_link(session: Session, clock: Clock, token: str) -> Driver:
    """Use a link: its driver, once; then the link (and its code) are spent."""
    login = session.scalar(
        select(DriverLogin).where(DriverLogin.token_hash == secret_digest(token)).with_for_update()
    )
    login = _usable(login, clock.now())
    driver = _active_driver(session, login)
    login.used_at = clock.now()
    return driver


class CodeThrottle(LoginThrottle):
    """Wrong codes per client (the caller's address), in this process."""


def redeem_code(
    session: Session,
    clock: Clock,
    code: str,
    *,
    client: str,
    secret_key: str,
    throttle: CodeThrottle,
) -> Driver:
    """Use a code typed on the phone: its driver, once. A wrong code counts against the client
    and against every live code (see the module notes); a locked client gets 429."""
    throttle.check(client)  # TooManyAttempts (429) while the client is locked out
    now = clock.now()
    typed = "".join(ch for ch in code if ch.isdigit())
    login = None
    if len(typed) == CODE_DIGITS:
        login = session.scalar(
            select(DriverLogin)
            .where(
                DriverLogin.code_hash == _code_hash(secret_key, typed),
                DriverLogin.used_at.is_(None),
                DriverLogin.expires_at > now,
                DriverLogin.failed_attempts < throttle.max_failures,
            )
            .with_for_update()
        )
    if login is None:
        throttle.failure(client)
        session.execute(
            update(DriverLogin)
            .where(DriverLogin.used_at.is_(None), DriverLogin.expires_at > now)
            .values(failed_attempts=DriverLogin.failed_attempts + 1)
            .execution_options(synchronize_session=False)
        )
        raise SignInFailed("this code is not valid; check it or ask for a new one")
    driver = _active_driver(session, login)
    login.used_at = now
    throttle.success(client)
    return driver
