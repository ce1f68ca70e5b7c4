"""``doorstep bench slots`` at a tiny size: it builds, plans and publishes a day, then times
real quotes against it (figures are printed by the command, never asserted)."""

from __future__ import annotations

from typer.testing import CliRunner

from doorstep.bench.slots import run_slots_bench
from doorstep.cli import app


def test_the_slots_bench_quotes_against_a_planned_day() -> None:
    """Every order of a 20-stop day is planned, each quote weighs the day's six windows, and
    afternoon orders moved to 18-20 are placed on the published plan."""
    result = run_slots_bench(20, quotes=3, time_limit_s=0.2, rebookings=3)
    assert result.planned == 20
    assert result.quotes == 3
    assert result.windows_per_quote == 6
    assert 0 < result.p50_ms <= result.p95_ms <= result.max_ms
    assert result.rebookings == 3
    assert result.rebook_cpu_p50_ms is not None and result.rebook_cpu_p95_ms is not None
    assert 0 < result.rebook_cpu_p50_ms <= result.rebook_cpu_p95_ms


def test_the_command_prints_json_figures() -> None:
    """`doorstep bench slots --json` prints one entry per size asked for."""
    out = CliRunner().invoke(
        app, ["bench", "slots", "--stops", "10", "--quotes", "2", "--time-limit", "0.2", "--json"]
    )
    assert out.exit_code == 0, out.output
    assert '"stops": 10' in out.output
