"""Sub-commands imported only when they run, so ``doorstep --help`` and every other command
start without importing the benchmark machinery (the optimiser, the HTTP load generator, the
road-graph loader: seconds of imports).

A :func:`lazy_group` names each sub-command by ``module:attribute`` with a one-line help; the
listing in ``--help`` uses that line, and the module is imported when the command is run (or its
own ``--help`` asked for)."""

from __future__ import annotations

import importlib
from typing import Any

import typer
import typer.core
import typer.main

LazyEntries = dict[str, tuple[str, str]]
"""command name -> (``module:attribute``, one-line help). The attribute is a ``typer.Typer``
(a group) or a command function."""


class _LazyGroup(typer.core.TyperGroup):
    lazy: LazyEntries = {}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._listing = False

    def list_commands(self, ctx: Any) -> list[str]:
        return [*super().list_commands(ctx), *self.lazy]

    def format_help(self, ctx: Any, formatter: Any) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name not in self.lazy:
            return super().get_command(ctx, cmd_name)
        target, short_help = self.lazy[cmd_name]
        if self._listing:  # the parent's --help only needs the one-line help
            return typer.core.TyperCommand(name=cmd_name, help=short_help)
        module_name, _, attribute = target.partition(":")
        loaded = getattr(importlib.import_module(module_name), attribute)
        command: Any
        if isinstance(loaded, typer.Typer):
            command = typer.main.get_group(loaded)
        else:
            single = typer.Typer()
            single.command(cmd_name, help=loaded.__doc__)(loaded)
            command = typer.main.get_command(single)
        command.name = cmd_name
        self.commands[cmd_name] = command
        self.lazy = {k: v for k, v in self.lazy.items() if k != cmd_name}
        return command


def lazy_group(entries: LazyEntries) -> type[typer.core.TyperGroup]:
    """A Typer group class whose ``entries`` are imported on first use."""
    return type("LazyGroup", (_LazyGroup,), {"lazy": dict(entries)})
