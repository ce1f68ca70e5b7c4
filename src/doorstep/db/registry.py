"""Imports every model so ``Base.metadata`` knows the whole schema (Alembic, drift checks)."""

from doorstep.db.base import Base
from doorstep.domain import idempotency
from doorstep.domain.accounts import login_links as console_login_links
from doorstep.domain.accounts import models as accounts
from doorstep.domain.dispatch import models as dispatch
from doorstep.domain.dispatch import signin as driver_signin
from doorstep.domain.feedback import models as feedback
from doorstep.domain.notifications import models as notifications
from doorstep.domain.orders import models as orders
from doorstep.domain.partners import models as partners
from doorstep.domain.slots import models as slots
from doorstep.domain.tracking import models as tracking

metadata = Base.metadata

__all__ = [
    "accounts",
    "console_login_links",
    "dispatch",
    "driver_signin",
    "feedback",
    "idempotency",
    "metadata",
    "notifications",
    "orders",
    "partners",
    "slots",
    "tracking",
]
