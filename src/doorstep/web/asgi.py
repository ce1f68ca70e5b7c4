"""The ASGI entry point for uvicorn: ``doorstep.web.asgi:app``."""

import gc

from doorstep.observability import configure_logging
from doorstep.runtime import Runtime
from doorstep.settings import Settings
from doorstep.web.app import create_app

# A serving process's garbage collector, tuned for live streams (ADR 0020). Everything built
# so far (modules, models, routes) lives as long as the process: frozen, no full collection
# walks it again. Young collections every 20,000 allocations instead of 700, and full ones
# rarer, because with a thousand tracking streams open (each a few hundred long-lived objects)
# the default thresholds ran a full collection every few seconds and paused every stream for
# 100-400 ms: most of the latency tail of `doorstep bench live`.
SERVING_GC_THRESHOLDS = (20_000, 20, 20)

_settings = Settings()
configure_logging(_settings.log_level, _settings.log_json)
app = create_app(Runtime.from_settings(_settings))
gc.collect()
gc.freeze()
gc.set_threshold(*SERVING_GC_THRESHOLDS)
