"""The ASGI entry point for uvicorn: ``doorstep.web.asgi:app``."""

from doorstep.observability import configure_logging
from doorstep.runtime import Runtime
from doorstep.settings import Settings
from doorstep.web.app import create_app

_settings = Settings()
configure_logging(_settings.log_level, _settings.log_json)
app = create_app(Runtime.from_settings(_settings))
