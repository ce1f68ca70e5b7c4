"""Benchmark machinery shared by the ``doorstep bench ...`` commands: a closed-loop HTTP load
generator with latency statistics (:mod:`~doorstep.bench.http_load`), throw-away databases and
a real server in a subprocess (:mod:`~doorstep.bench.local_server`), and the API scenarios
(:mod:`~doorstep.bench.api`). Benchmarks print figures; they are never timed tests."""
