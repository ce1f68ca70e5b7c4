"""Verbs for console users: create, authenticate, change password, deactivate; roles and what
each role may do; the per-e-mail login throttle.

Passwords are argon2id hashes (argon2-cffi's RFC 9106 defaults). There is no default password
anywhere: every user gets one chosen by a person, checked against :func:`password_problems`.

Authentication answers the same :class:`InvalidCredentials` for an unknown e-mail, a wrong
password and a deactivated user, and spends about the same time on each (an unknown e-mail is
verified against a dummy hash), so the answer says nothing about which accounts exist.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from email_validator import EmailNotValidError, validate_email
from sqlalchemy import select
from sqlalchemy.orm import Session

from doorstep.clock import Clock
from doorstep.domain.accounts.models import Merchant, Role, User
from doorstep.domain.errors import (
    Conflict,
    DomainError,
    FieldError,
    NotFound,
    Unauthorized,
    Unprocessable,
)
from doorstep.ids import new_id

__all__ = [
    "MAX_PASSWORD_LENGTH",
    "MIN_PASSWORD_LENGTH",
    "PERMISSIONS",
    "Action",
    "InvalidCredentials",
    "LoginThrottle",
    "TooManyAttempts",
    "authenticate_user",
    "can",
    "create_user",
    "deactivate_user",
    "get_active_user",
    "get_user_by_email",
    "normalize_email",
    "password_problems",
    "set_password",
    "warm_up",
]

MIN_PASSWORD_LENGTH = 12
# Argon2 hashes any length, but a megabyte "password" is a cheap way to burn our CPU.
MAX_PASSWORD_LENGTH = 1024
_MIN_DISTINCT_CHARS = 5

# Passwords of 12+ characters that still top the breach lists; compared case-insensitively.
# Deliberately small: the length rule does most of the work, this catches the obvious.
COMMON_PASSWORDS = frozenset(
    {
        "123456789012",
        "1234567890123",
        "12345678901234",
        "123456789123",
        "111111111111",
        "000000000000",
        "1q2w3e4r5t6y",
        "1qaz2wsx3edc",
        "qwertyuiop12",
        "qwertyuiopasdf",
        "qwerty123456",
        "qwertyqwerty",
        "asdfghjkl123",
        "zaq12wsxcde3",
        "password1234",
        "password12345",
        "password123456",
        "passwordpassword",
        "password1!",
        "p@ssw0rd1234",
        "p@ssword1234",
        "administrator",
        "administrator1",
        "admin1234567",
        "adminadmin123",
        "iloveyou1234",
        "letmein12345",
        "welcome12345",
        "welcome123456",
        "changeme1234",
        "changemeplease",
        "trustno1trustno1",
        "sunshine1234",
        "football1234",
        "baseball1234",
        "superman1234",
        "princess1234",
        "monkey123456",
        "dragon123456",
        "correcthorsebatterystaple",
        "doorstep1234",
        "doorstep12345",
        "doorstepdoorstep",
    }
)


class Action(StrEnum):
    """Things a console user may do; pages check them with :func:`can`."""

    ORDERS_READ = "orders.read"
    ORDERS_WRITE = "orders.write"
    PLANS_READ = "plans.read"
    PLANS_WRITE = "plans.write"
    DRIVERS_MANAGE = "drivers.manage"
    CASES_READ = "cases.read"
    CASES_WRITE = "cases.write"
    ANALYTICS_READ = "analytics.read"
    USERS_MANAGE = "users.manage"
    SETTINGS_MANAGE = "settings.manage"
    API_KEYS_MANAGE = "api_keys.manage"
    OWN_ROUTE = "route.own"  # a driver's own stops and proof of delivery


PERMISSIONS: dict[Role, frozenset[Action]] = {
    Role.OWNER: frozenset(Action),
    Role.DISPATCHER: frozenset(
        {
            Action.ORDERS_READ,
            Action.ORDERS_WRITE,
            Action.PLANS_READ,
            Action.PLANS_WRITE,
            Action.DRIVERS_MANAGE,
            Action.ANALYTICS_READ,
        }
    ),
    # Support reads the day's plan (where is this parcel, who carries it) but changes nothing.
    Role.SUPPORT: frozenset(
        {
            Action.ORDERS_READ,
            Action.PLANS_READ,
            Action.CASES_READ,
            Action.CASES_WRITE,
            Action.ANALYTICS_READ,
        }
    ),
    Role.DRIVER: frozenset({Action.OWN_ROUTE}),
}


def can(role: Role | str, action: Action | str) -> bool:
    """Whether ``role`` may do ``action``; unknown roles and actions may do nothing."""
    try:
        return Action(action) in PERMISSIONS[Role(role)]
    except ValueError:
        return False


class InvalidCredentials(Unauthorized):
    """Unknown e-mail, wrong password or deactivated user: deliberately one error."""

    title = "Invalid credentials"
    type_slug = "invalid-credentials"

    def __init__(self) -> None:
        super().__init__("e-mail or password is incorrect")


class TooManyAttempts(DomainError):
    status_code = 429
    title = "Too many attempts"
    type_slug = "too-many-attempts"

    def __init__(self, retry_after: timedelta) -> None:
        self.retry_after = retry_after
        self.retry_after_minutes = max(1, math.ceil(retry_after.total_seconds() / 60))
        super().__init__(
            f"too many failed sign-in attempts; try again in {self.retry_after_minutes} minute(s)"
        )


@dataclass
class _Failures:
    times: list[datetime] = field(default_factory=list)
    locked_until: datetime | None = None


class LoginThrottle:
    """Refuses sign-ins for an e-mail after ``max_failures`` failures within ``window``, for
    ``lockout``. Keyed by the normalised e-mail whether or not such a user exists, so a
    lock-out reveals nothing either.

    State lives in this process only: with several server processes each keeps its own count
    (an attacker gets ``max_failures`` per process) and a restart forgets it. The number of
    e-mails tracked is capped so a spray of random addresses cannot grow memory without bound.
    """

    def __init__(
        self,
        clock: Clock,
        *,
        max_failures: int = 5,
        window: timedelta = timedelta(minutes=15),
        lockout: timedelta = timedelta(minutes=15),
        max_tracked: int = 10_000,
    ) -> None:
        self.clock = clock
        self.max_failures = max_failures
        self.window = window
        self.lockout = lockout
        self.max_tracked = max_tracked
        self._state: dict[str, _Failures] = {}
        self._lock = threading.Lock()

    def check(self, email: str) -> None:
        """Raise :class:`TooManyAttempts` while ``email`` is locked out."""
        now = self.clock.now()
        with self._lock:
            entry = self._state.get(normalize_email(email))
            if entry is not None and entry.locked_until is not None and now < entry.locked_until:
                raise TooManyAttempts(entry.locked_until - now)

    def failure(self, email: str) -> None:
        """Count a failed attempt; the ``max_failures``-th within the window locks the e-mail."""
        key = normalize_email(email)
        now = self.clock.now()
        with self._lock:
            entry = self._state.get(key)
            if entry is None:
                if len(self._state) >= self.max_tracked:
                    self._prune(now)
                entry = self._state[key] = _Failures()
            if entry.locked_until is not None and now >= entry.locked_until:
                entry.locked_until = None
                entry.times.clear()
            entry.times = [t for t in entry.times if now - t < self.window]
            entry.times.append(now)
            if len(entry.times) >= self.max_failures:
                entry.locked_until = now + self.lockout
                entry.times.clear()

    def success(self, email: str) -> None:
        """Forget the failures of ``email`` after a successful sign-in."""
        with self._lock:
            self._state.pop(normalize_email(email), None)

    def _prune(self, now: datetime) -> None:
        stale = [
            key
            for key, entry in self._state.items()
            if (entry.locked_until is None or entry.locked_until <= now)
            and all(now - t >= self.window for t in entry.times)
        ]
        for key in stale:
            del self._state[key]
        # Still full of live entries (a spray): drop the oldest half rather than grow.
        if len(self._state) >= self.max_tracked:
            for key in list(self._state)[: len(self._state) // 2]:
                del self._state[key]


_hasher = PasswordHasher()  # argon2id, RFC 9106 "low memory" profile (t=3, m=64 MiB, p=4)
# Each hash holds 64 MiB while it runs; bound how many run at once so a burst of sign-ins
# cannot exhaust memory (the web server runs sync handlers in a 40-thread pool).
_hash_slots = threading.BoundedSemaphore(4)


def _hash(password: str) -> str:
    with _hash_slots:
        return _hasher.hash(password)


def _verify(password_hash: str, password: str) -> bool:
    with _hash_slots:
        try:
            return _hasher.verify(password_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False


@cache
def _dummy_hash() -> str:
    """A hash of nothing anyone knows, verified when the e-mail is unknown (equal timing)."""
    return _hash("doorstep-dummy-password-that-is-never-accepted")


def warm_up() -> None:
    """Make the dummy hash now, so the first sign-in with an unknown e-mail is not the one
    request that takes twice as long (servers call this at start-up)."""
    _dummy_hash()


def normalize_email(email: str) -> str:
    """The form e-mails are stored and looked up in: trimmed and lower-cased (stored that way,
    so look-ups are plain equality on the unique index)."""
    return email.strip().lower()


def password_problems(password: str, *, email: str | None = None) -> list[str]:
    """Why ``password`` is refused; an empty list when it is acceptable."""
    problems: list[str] = []
    if len(password) < MIN_PASSWORD_LENGTH:
        problems.append(f"must be at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        problems.append(f"must be at most {MAX_PASSWORD_LENGTH} characters")
    folded = password.strip().casefold()
    if email is not None:
        address = normalize_email(email)
        if folded in (address, address.split("@", 1)[0]):
            problems.append("must not be the e-mail address")
    if folded in COMMON_PASSWORDS:
        problems.append("is too common")
    elif len(password) >= MIN_PASSWORD_LENGTH and len(set(password)) < _MIN_DISTINCT_CHARS:
        problems.append(f"must contain at least {_MIN_DISTINCT_CHARS} different characters")
    return problems


def _check_password(password: str, email: str) -> None:
    problems = password_problems(password, email=email)
    if problems:
        raise Unprocessable(
            "password refused",
            errors=[FieldError("password", p, "weak_password") for p in problems],
        )


def create_user(
    session: Session,
    clock: Clock,
    merchant: Merchant,
    email: str,
    name: str,
    role: Role | str,
    password: str,
) -> User:
    """A new active console user of ``merchant``. E-mails are unique across all merchants
    (the sign-in form asks for the e-mail only)."""
    errors: list[FieldError] = []
    try:
        address = validate_email(email.strip(), check_deliverability=False).normalized
        address = normalize_email(address)
    except EmailNotValidError as exc:
        errors.append(FieldError("email", str(exc), "invalid_email"))
        address = normalize_email(email)
    name = name.strip()
    if not name or len(name) > 200:
        errors.append(FieldError("name", "must be 1 to 200 characters"))
    try:
        role = Role(role)
    except ValueError:
        allowed = ", ".join(r.value for r in Role)
        errors.append(FieldError("role", f"must be one of {allowed}", "invalid_role"))
    errors.extend(
        FieldError("password", p, "weak_password")
        for p in password_problems(password, email=address)
    )
    if errors:
        raise Unprocessable("invalid user", errors=errors)
    if session.scalar(select(User.id).where(User.email == address)) is not None:
        raise Conflict(
            "a user with this e-mail already exists",
            errors=[FieldError("email", "already in use", "duplicate")],
        )
    now = clock.now()
    user = User(
        id=new_id("usr", now),
        merchant_id=merchant.id,
        email=address,
        name=name,
        role=Role(role).value,
        password_hash=_hash(password),
        active=True,
        created_at=now,
    )
    session.add(user)
    session.flush()
    return user


def authenticate_user(
    session: Session,
    clock: Clock,
    email: str,
    password: str,
    *,
    throttle: LoginThrottle | None = None,
) -> User:
    """The active user with this e-mail and password, or :class:`InvalidCredentials`.

    With a ``throttle``, a locked-out e-mail gets :class:`TooManyAttempts` before any
    password check, and every refusal counts towards the lock-out. The hash is upgraded in
    place when the hashing parameters changed since it was made."""
    if throttle is not None:
        throttle.check(email)
    address = normalize_email(email)
    user = session.scalar(select(User).where(User.email == address)) if address else None
    too_long = len(password) > MAX_PASSWORD_LENGTH
    ok = _verify(
        user.password_hash if user is not None else _dummy_hash(),
        password[:MAX_PASSWORD_LENGTH],
    )
    if user is None or not ok or too_long or not user.active:
        if throttle is not None:
            throttle.failure(email)
        raise InvalidCredentials()
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hash(password)
    user.last_login_at = clock.now()
    if throttle is not None:
        throttle.success(email)
    return user


def set_password(session: Session, clock: Clock, user: User, password: str) -> None:
    """Replace ``user``'s password (same policy as at creation). Console sessions signed in
    with the old password stop working, since they carry a fingerprint of the hash."""
    _check_password(password, user.email)
    user.password_hash = _hash(password)
    session.flush()


def deactivate_user(session: Session, clock: Clock, user: User) -> None:
    """Refuse ``user`` any further sign-in; open console sessions end at their next request."""
    user.active = False
    session.flush()


def get_active_user(session: Session, user_id: str) -> User | None:
    """The user with this id if it exists and is active; the access function for sessions."""
    user = session.get(User, user_id)
    if user is None or not user.active:
        return None
    return user


def get_user_by_email(session: Session, email: str) -> User:
    """The user with this e-mail (active or not), for administration; :class:`NotFound`
    otherwise. Never use it to sign someone in: that is :func:`authenticate_user`."""
    user = session.scalar(select(User).where(User.email == normalize_email(email)))
    if user is None:
        raise NotFound("no user with this e-mail")
    return user
