"""What a running Doorstep process holds: settings, clock, database. Built once at start-up and
handed to the web app, the worker and the CLI alike."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from doorstep.clock import Clock, SystemClock
from doorstep.db.engine import make_engine, make_sessionmaker
from doorstep.settings import Settings


@dataclass
class Runtime:
    settings: Settings
    clock: Clock
    engine: Engine
    sessions: sessionmaker[Session] = field(init=False)
    read_sessions: sessionmaker[Session] = field(init=False)

    def __post_init__(self) -> None:
        self.sessions = make_sessionmaker(self.engine)
        self.read_sessions = make_sessionmaker(self.engine, read_only=True)

    @classmethod
    def from_settings(cls, settings: Settings | None = None, clock: Clock | None = None) -> Runtime:
        settings = settings or Settings()
        return cls(
            settings=settings,
            clock=clock or SystemClock(),
            engine=make_engine(settings.effective_database_url),
        )

    def close(self) -> None:
        self.engine.dispose()
