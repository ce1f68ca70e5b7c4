"""Business rules. Never imports ``doorstep.web``, ``doorstep.worker`` or ``doorstep.cli``."""
