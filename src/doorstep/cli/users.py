"""``doorstep user ...``: console users, over the same verbs the console uses.

Passwords are never command-line arguments (they would land in shell history and ``ps``):
they are typed twice at a hidden prompt, or read from the first line of standard input with
``--password-stdin`` for scripts.
"""

from __future__ import annotations

import json
import sys

import typer
from rich.console import Console
from rich.markup import escape

from doorstep.db.engine import transaction
from doorstep.db.migrate import upgrade
from doorstep.domain.accounts.models import Merchant, Role
from doorstep.domain.accounts.users import (
    create_user,
    deactivate_user,
    get_user_by_email,
    password_problems,
    set_password,
)
from doorstep.domain.errors import DomainError, NotFound
from doorstep.observability import configure_logging
from doorstep.runtime import Runtime
from doorstep.settings import Settings

user_app = typer.Typer(help="Manage console users.", no_args_is_help=True)

_console = Console()
_err = Console(stderr=True)


def _runtime() -> Runtime:
    settings = Settings()
    configure_logging(settings.log_level, settings.log_json)
    runtime = Runtime.from_settings(settings)
    upgrade(runtime.engine)
    return runtime


def _fail(exc: DomainError) -> typer.Exit:
    details = "; ".join(f"{e.field}: {e.message}" for e in exc.errors) or exc.detail
    _err.print(f"[red]error:[/] {escape(details)}", highlight=False)
    return typer.Exit(2)


def _read_password(from_stdin: bool, email: str) -> str:
    """The new password, from stdin's first line or a hidden prompt typed twice; checked
    against the policy before anything touches the database."""
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))
    problems = password_problems(password, email=email)
    if problems:
        _err.print(f"[red]error:[/] password {escape('; '.join(problems))}", highlight=False)
        raise typer.Exit(2)
    return password


@user_app.command("create")
def user_create(
    email: str = typer.Argument(..., help="The user's e-mail; they sign in with it"),
    merchant: str = typer.Option(..., "--merchant", help="The merchant's id (mer_...)"),
    role: Role = typer.Option(Role.DISPATCHER, "--role", help="What the user may do"),
    name: str = typer.Option(..., "--name", help="The user's name as shown in the console"),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Read the password from the first line of stdin"
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON"),
) -> None:
    """Create a console user of a merchant (the password is asked for, never an argument)."""
    password = _read_password(password_stdin, email)
    runtime = _runtime()
    try:
        with transaction(runtime.sessions) as session:
            owner = session.get(Merchant, merchant)
            if owner is None:
                raise NotFound(f"no merchant {merchant!r}")
            user = create_user(session, runtime.clock, owner, email, name, role, password)
            merchant_name = owner.name
    except DomainError as exc:
        raise _fail(exc) from exc
    finally:
        runtime.close()
    if as_json:
        payload = {
            "id": user.id,
            "email": user.email,
            "name": user.name,
            "role": user.role,
            "merchant_id": user.merchant_id,
        }
        typer.echo(json.dumps(payload))
    else:
        _console.print(
            f"User [bold]{escape(user.email)}[/] ({user.role}) created for "
            f"{escape(merchant_name)}: {user.id}",
            highlight=False,
        )


@user_app.command("set-password")
def user_set_password(
    email: str = typer.Argument(..., help="The user's e-mail"),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Read the password from the first line of stdin"
    ),
) -> None:
    """Give a user a new password; their open console sessions end."""
    password = _read_password(password_stdin, email)
    runtime = _runtime()
    try:
        with transaction(runtime.sessions) as session:
            user = get_user_by_email(session, email)
            set_password(session, runtime.clock, user, password)
    except DomainError as exc:
        raise _fail(exc) from exc
    finally:
        runtime.close()
    _console.print(f"Password of [bold]{escape(user.email)}[/] changed.", highlight=False)


@user_app.command("deactivate")
def user_deactivate(email: str = typer.Argument(..., help="The user's e-mail")) -> None:
    """Stop a user from signing in; their open console sessions end at the next request."""
    runtime = _runtime()
    try:
        with transaction(runtime.sessions) as session:
            user = get_user_by_email(session, email)
            deactivate_user(session, runtime.clock, user)
    except DomainError as exc:
        raise _fail(exc) from exc
    finally:
        runtime.close()
    _console.print(f"User [bold]{escape(user.email)}[/] deactivated.", highlight=False)


@user_app.command("login-link")
def user_login_link(
    email: str = typer.Argument(..., help="The user's e-mail"),
    minutes: int = typer.Option(
        15, "--minutes", min=1, max=24 * 60, help="How long the link works (once)"
    ),
) -> None:
    """Print a one-time sign-in link for a user (the server's address is DOORSTEP_BASE_URL);
    the user's earlier unused links stop working."""
    from datetime import timedelta

    from doorstep.domain.accounts.login_links import issue_login_link

    runtime = _runtime()
    try:
        with transaction(runtime.sessions) as session:
            user = get_user_by_email(session, email)
            issued = issue_login_link(
                session,
                runtime.clock,
                user,
                base_url=runtime.settings.base_url,
                ttl=timedelta(minutes=minutes),
            )
    except DomainError as exc:
        raise _fail(exc) from exc
    finally:
        runtime.close()
    _err.print(
        f"Sign-in link for [bold]{escape(email)}[/], once, within {minutes} minutes:",
        highlight=False,
    )
    typer.echo(issued.url)
