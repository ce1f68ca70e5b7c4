"""What a running Doorstep process holds: settings, clock, database, live bus. Built once at
start-up and handed to the web app, the worker and the CLI alike."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from doorstep.clock import Clock, SystemClock
from doorstep.db.engine import make_engine, make_sessionmaker
from doorstep.live import LiveBus, install_publisher, make_bus
from doorstep.settings import Settings


@dataclass
class Runtime:
    settings: Settings
    clock: Clock
    engine: Engine
    # The live bus (in-process, or Redis with DOORSTEP_REDIS_URL); its hook publishes every
    # event and position that the sessions below commit.
    bus: LiveBus | None = None
    sessions: sessionmaker[Session] = field(init=False)
    read_sessions: sessionmaker[Session] = field(init=False)

    def __post_init__(self) -> None:
        self.sessions = make_sessionmaker(self.engine)
        self.read_sessions = make_sessionmaker(self.engine, read_only=True)
        if self.bus is None:
            self.bus = make_bus(self.settings.redis_url)
        install_publisher(self.sessions, self.bus)

    @property
    def live(self) -> LiveBus:
        """The live bus (always set after construction)."""
        assert self.bus is not None
        return self.bus

    @classmethod
    def from_settings(cls, settings: Settings | None = None, clock: Clock | None = None) -> Runtime:
        settings = settings or Settings()
        return cls(
            settings=settings,
            clock=clock or SystemClock(),
            engine=make_engine(settings.effective_database_url),
        )

    def close(self) -> None:
        self.live.close()
        self.engine.dispose()
