"""Console users: argon2id hashes, the password policy, one answer for every wrong credential,
the lock-out, the permission table, and the ``doorstep user`` commands."""

from __future__ import annotations

from datetime import timedelta

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select
from typer.testing import CliRunner

from doorstep.clock import FrozenClock
from doorstep.db.engine import transaction
from doorstep.domain.accounts import users as users_module
from doorstep.domain.accounts.models import Merchant, Role, User
from doorstep.domain.accounts.users import (
    Action,
    InvalidCredentials,
    LoginThrottle,
    TooManyAttempts,
    authenticate_user,
    can,
    create_user,
    deactivate_user,
    set_password,
)
from doorstep.domain.errors import Conflict, Unprocessable
from doorstep.runtime import Runtime
from tests.conftest import TEST_SECRET, MerchantCtx

PASSWORD = "Riviera-Blooms-2026!"
EMAIL = "ada@example.com"


def _create(
    runtime: Runtime,
    merchant: MerchantCtx,
    *,
    email: str = EMAIL,
    role: Role = Role.DISPATCHER,
    password: str = PASSWORD,
) -> User:
    with transaction(runtime.sessions) as session:
        owner = session.get(Merchant, merchant.id)
        assert owner is not None
        return create_user(session, runtime.clock, owner, email, "Ada Lovelace", role, password)


def _login(
    runtime: Runtime, email: str, password: str, throttle: LoginThrottle | None = None
) -> User:
    with transaction(runtime.sessions) as session:
        return authenticate_user(session, runtime.clock, email, password, throttle=throttle)


def test_password_is_stored_as_argon2id_never_in_plaintext(
    runtime: Runtime, merchant: MerchantCtx
) -> None:
    """The stored hash is argon2id and the plaintext appears nowhere in the row."""
    user = _create(runtime, merchant, email="  Ada@Example.COM ")
    with runtime.sessions() as session:
        row = session.scalars(select(User).where(User.id == user.id)).one()
        assert row.password_hash.startswith("$argon2id$")
        assert PASSWORD not in repr([getattr(row, c.key) for c in User.__table__.columns])
        assert row.email == EMAIL and row.active and row.role == "dispatcher"


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("short-pw-1", "at least 12 characters"),
        (EMAIL, "must not be the e-mail"),
        ("ADA@example.com", "must not be the e-mail"),
        ("password1234", "too common"),
        ("Correcthorsebatterystaple", "too common"),
        ("aaaaaaaaaaaaaaab", "different characters"),
    ],
)
def test_weak_passwords_are_refused(
    runtime: Runtime, merchant: MerchantCtx, password: str, reason: str
) -> None:
    """Each rule of the password policy refuses its case with a field error on password."""
    with pytest.raises(Unprocessable) as caught:
        _create(runtime, merchant, password=password)
    assert [e.field for e in caught.value.errors] == ["password"]
    assert reason in caught.value.errors[0].message


def test_duplicate_email_and_bad_role_are_refused(runtime: Runtime, merchant: MerchantCtx) -> None:
    """E-mails are unique whatever their case, and roles come from the Role enum."""
    _create(runtime, merchant)
    with pytest.raises(Conflict):
        _create(runtime, merchant, email="ADA@example.com")
    with pytest.raises(Unprocessable) as caught:
        _create(runtime, merchant, email="bob@example.com", role="admin")  # type: ignore[arg-type]
    assert caught.value.errors[0].field == "role"


def test_correct_credentials_sign_in_whatever_the_email_case(
    runtime: Runtime, merchant: MerchantCtx, clock: FrozenClock
) -> None:
    """The right password signs in, matches the e-mail case-insensitively, stamps last login."""
    created = _create(runtime, merchant)
    user = _login(runtime, " ADA@example.com", PASSWORD)
    assert user.id == created.id and user.last_login_at == clock.now()


def test_wrong_password_and_unknown_email_give_the_same_answer(
    runtime: Runtime, merchant: MerchantCtx, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Unknown e-mail and wrong password raise identical errors, both after a hash check."""
    _create(runtime, merchant)
    verified: list[str] = []
    real_verify = users_module._verify

    def counting_verify(password_hash: str, password: str) -> bool:
        verified.append(password_hash)
        return real_verify(password_hash, password)

    monkeypatch.setattr(users_module, "_verify", counting_verify)
    answers = []
    for email, password in [(EMAIL, "Wrong-Password-123"), ("nobody@example.com", PASSWORD)]:
        with pytest.raises(InvalidCredentials) as caught:
            _login(runtime, email, password)
        exc = caught.value
        answers.append((type(exc), exc.status_code, exc.type_slug, exc.detail))
    assert answers[0] == answers[1]
    assert len(verified) == 2 and all(h.startswith("$argon2id$") for h in verified)


def test_inactive_user_is_refused_with_the_same_answer(
    runtime: Runtime, merchant: MerchantCtx
) -> None:
    """A deactivated user with the right password gets the wrong-credentials answer."""
    user = _create(runtime, merchant)
    with transaction(runtime.sessions) as session:
        deactivate_user(session, runtime.clock, session.get(User, user.id))  # type: ignore[arg-type]
    with pytest.raises(InvalidCredentials) as caught:
        _login(runtime, EMAIL, PASSWORD)
    assert caught.value.detail == InvalidCredentials().detail


def test_set_password_applies_the_policy_and_replaces_the_hash(
    runtime: Runtime, merchant: MerchantCtx
) -> None:
    """A new password must pass the policy; afterwards only the new one signs in."""
    user = _create(runtime, merchant)
    new_password = "Monaco-Tulips-Spring-7"
    with transaction(runtime.sessions) as session:
        row = session.get(User, user.id)
        assert row is not None
        with pytest.raises(Unprocessable):
            set_password(session, runtime.clock, row, "tooshort")
        set_password(session, runtime.clock, row, new_password)
    with pytest.raises(InvalidCredentials):
        _login(runtime, EMAIL, PASSWORD)
    assert _login(runtime, EMAIL, new_password).id == user.id


def test_hash_is_upgraded_when_parameters_change(runtime: Runtime, merchant: MerchantCtx) -> None:
    """A hash made with older, weaker parameters is re-hashed at the next sign-in."""
    user = _create(runtime, merchant)
    weak = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1).hash(PASSWORD)
    with transaction(runtime.sessions) as session:
        row = session.get(User, user.id)
        assert row is not None
        row.password_hash = weak
    _login(runtime, EMAIL, PASSWORD)
    with runtime.sessions() as session:
        stored = session.get(User, user.id)
        assert stored is not None
        assert stored.password_hash != weak
        assert not PasswordHasher().check_needs_rehash(stored.password_hash)


def test_five_failures_lock_the_email_for_fifteen_minutes(
    runtime: Runtime, merchant: MerchantCtx, clock: FrozenClock
) -> None:
    """After 5 failures even the right password is refused until 15 minutes have passed."""
    _create(runtime, merchant)
    throttle = LoginThrottle(clock)
    for _ in range(5):
        with pytest.raises(InvalidCredentials):
            _login(runtime, EMAIL, "Wrong-Password-123", throttle)
        clock.advance(timedelta(minutes=1))
    with pytest.raises(TooManyAttempts) as caught:
        _login(runtime, EMAIL.upper(), PASSWORD, throttle)
    assert caught.value.status_code == 429
    # The 5th failure (at minute 4) locked until minute 19; it is now minute 5.
    assert caught.value.retry_after == timedelta(minutes=14)
    clock.advance(timedelta(minutes=13, seconds=59))
    with pytest.raises(TooManyAttempts):
        _login(runtime, EMAIL, PASSWORD, throttle)
    clock.advance(timedelta(seconds=1))
    assert _login(runtime, EMAIL, PASSWORD, throttle).email == EMAIL


def test_failures_spread_over_more_than_the_window_do_not_lock(
    runtime: Runtime, merchant: MerchantCtx, clock: FrozenClock
) -> None:
    """Only failures within 15 minutes count, and a success resets the count."""
    _create(runtime, merchant)
    throttle = LoginThrottle(clock)
    for _ in range(4):
        with pytest.raises(InvalidCredentials):
            _login(runtime, EMAIL, "Wrong-Password-123", throttle)
    clock.advance(timedelta(minutes=16))
    with pytest.raises(InvalidCredentials):
        _login(runtime, EMAIL, "Wrong-Password-123", throttle)
    _login(runtime, EMAIL, PASSWORD, throttle)
    for _ in range(4):
        with pytest.raises(InvalidCredentials):
            _login(runtime, EMAIL, "Wrong-Password-123", throttle)
    assert _login(runtime, EMAIL, PASSWORD, throttle).email == EMAIL


def test_unknown_emails_lock_out_too(clock: FrozenClock) -> None:
    """The throttle keys on the e-mail typed, so a lock-out does not reveal that it exists."""
    throttle = LoginThrottle(clock)
    for _ in range(5):
        throttle.failure("ghost@example.com")
    with pytest.raises(TooManyAttempts):
        throttle.check("Ghost@Example.com")
    throttle.check("someone-else@example.com")


def test_throttle_memory_is_bounded(clock: FrozenClock) -> None:
    """A spray of distinct e-mails cannot grow the throttle past its cap."""
    throttle = LoginThrottle(clock, max_tracked=100)
    for i in range(1000):
        throttle.failure(f"spray{i}@example.com")
    assert len(throttle._state) <= 100


def test_permission_table() -> None:
    """Owner does everything; dispatcher plans/orders/drivers; support reads orders and plans and
    handles cases; driver only their own route; unknown roles nothing."""
    assert all(can(Role.OWNER, action) for action in Action)
    assert can("dispatcher", "plans.write") and can(Role.DISPATCHER, Action.DRIVERS_MANAGE)
    assert not can(Role.DISPATCHER, Action.USERS_MANAGE)
    assert can(Role.SUPPORT, Action.ORDERS_READ) and can(Role.SUPPORT, Action.CASES_WRITE)
    assert not can(Role.SUPPORT, Action.ORDERS_WRITE)
    assert [a for a in Action if can(Role.DRIVER, a)] == [Action.OWN_ROUTE]
    assert not can("admin", Action.ORDERS_READ) and not can(Role.OWNER, "nuke.everything")


# --- the CLI ------------------------------------------------------------------------------


@pytest.fixture
def cli_env(runtime: Runtime) -> dict[str, str]:
    """Environment pointing ``doorstep`` at this test's database."""
    return {
        "DOORSTEP_DATABASE_URL": runtime.engine.url.render_as_string(hide_password=False),
        "DOORSTEP_DATA_DIR": str(runtime.settings.data_dir),
        "DOORSTEP_SECRET_KEY": TEST_SECRET,
        "DOORSTEP_LOG_LEVEL": "WARNING",
    }


def _cli(args: list[str], env: dict[str, str], stdin: str) -> tuple[int, str]:
    from doorstep.cli import app

    result = CliRunner().invoke(app, args, input=stdin, env=env)
    return result.exit_code, result.output


def test_cli_creates_a_user_from_password_stdin(
    runtime: Runtime, merchant: MerchantCtx, cli_env: dict[str, str]
) -> None:
    """``user create --password-stdin`` creates a user who can then sign in."""
    args = ["user", "create", EMAIL, "--merchant", merchant.id, "--role", "support"]
    code, output = _cli([*args, "--name", "Ada", "--password-stdin", "--json"], cli_env, PASSWORD)
    assert code == 0, output
    assert '"role": "support"' in output and PASSWORD not in output
    assert _login(runtime, EMAIL, PASSWORD).role == "support"


def test_cli_prompts_twice_and_insists_on_matching_entries(
    runtime: Runtime, merchant: MerchantCtx, cli_env: dict[str, str]
) -> None:
    """Without --password-stdin the password is asked twice (hidden) until both match."""
    typed = f"{PASSWORD}\nsomething-else-entirely\n{PASSWORD}\n{PASSWORD}\n"
    args = ["user", "create", EMAIL, "--merchant", merchant.id, "--name", "Ada Lovelace"]
    code, output = _cli(args, cli_env, typed)
    assert code == 0, output
    assert "do not match" in output and PASSWORD not in output
    assert _login(runtime, EMAIL, PASSWORD).role == "dispatcher"


def test_cli_refuses_weak_passwords_and_unknown_merchants(
    runtime: Runtime, merchant: MerchantCtx, cli_env: dict[str, str]
) -> None:
    """A weak password or a merchant id that does not exist exits 2 and creates nobody."""
    base = ["user", "create", EMAIL, "--name", "Ada", "--password-stdin"]
    code, output = _cli([*base, "--merchant", merchant.id], cli_env, "password1234\n")
    assert code == 2 and "too common" in output
    code, output = _cli([*base, "--merchant", "mer_nope"], cli_env, PASSWORD + "\n")
    assert code == 2 and "no merchant" in output
    with runtime.sessions() as session:
        assert session.scalars(select(User)).all() == []


def test_cli_set_password_and_deactivate(
    runtime: Runtime, merchant: MerchantCtx, cli_env: dict[str, str]
) -> None:
    """``user set-password`` replaces the password; ``user deactivate`` stops sign-ins."""
    _create(runtime, merchant)
    new_password = "Monaco-Tulips-Spring-7"
    code, output = _cli(["user", "set-password", EMAIL, "--password-stdin"], cli_env, new_password)
    assert code == 0, output
    assert _login(runtime, EMAIL, new_password).email == EMAIL
    code, output = _cli(["user", "deactivate", EMAIL], cli_env, "")
    assert code == 0, output
    with pytest.raises(InvalidCredentials):
        _login(runtime, EMAIL, new_password)
    code, output = _cli(["user", "deactivate", "nobody@example.com"], cli_env, "")
    assert code == 2 and "no user" in output
