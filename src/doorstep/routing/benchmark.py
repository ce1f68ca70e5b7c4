"""The Solomon VRPTW benchmark: Doorstep's optimiser and OR-Tools against the best-known
solutions, both checked by the independent checker. Pure: it returns figures and leaves the
printing to the caller (``doorstep bench routing``)."""

from __future__ import annotations

import fnmatch
import math
import statistics
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from doorstep.routing.check import check_solution
from doorstep.routing.ortools_baseline import solve_ortools
from doorstep.routing.problem import Problem, Solution
from doorstep.routing.solomon import SCALE, gap_pct, read_bks, read_problem
from doorstep.routing.solver import solve

Progress = Callable[[str, int, int], None]
"""Called with (instance name, index done so far, total) before each instance."""


@dataclass
class InstanceResult:
    """One instance: distances in the file's units (the BKS's), gaps in percent.

    ``feasible`` means the checker found nothing wrong and every customer was served."""

    name: str
    bks: float
    distance: float
    gap: float
    vehicles: int
    runtime: float
    feasible: bool
    violations: list[str] = field(default_factory=list)
    ortools_distance: float | None = None
    ortools_gap: float | None = None
    ortools_vehicles: int | None = None
    ortools_feasible: bool | None = None


@dataclass
class BenchmarkResult:
    """All instances and their means (infeasible results count in the means as they are)."""

    time_limit_s: float
    seed: int
    instances: list[InstanceResult]
    mean_gap_pct: float
    ortools_mean_gap_pct: float | None
    infeasible: int
    ortools_infeasible: int | None


def _select(names: Iterable[str], only: str | list[str] | None) -> list[str]:
    """Instance names kept by a filter: a list of names/globs or a comma-separated string."""
    if only is None:
        return sorted(names)
    patterns = [p.strip() for p in only.split(",")] if isinstance(only, str) else list(only)
    patterns = [p.upper() for p in patterns if p]
    return sorted(n for n in names if any(fnmatch.fnmatchcase(n.upper(), p) for p in patterns))


def _judge(problem: Problem, solution: Solution) -> tuple[bool, list[str]]:
    violations = check_solution(problem, solution)
    if solution.unassigned:
        violations.append(f"{len(solution.unassigned)} customers not served")
    return solution.feasible and not violations, violations


def run_benchmark(
    instances_dir: Path,
    bks_path: Path,
    *,
    time_limit_s: float,
    seed: int = 42,
    only: str | list[str] | None = None,
    with_ortools: bool = True,
    progress: Progress | None = None,
) -> BenchmarkResult:
    """Solve every instance file of ``instances_dir`` that ``bks_path`` knows (optionally
    filtered by ``only``) with each solver for ``time_limit_s`` seconds."""
    bks = read_bks(bks_path)
    files = {p.stem.upper(): p for p in instances_dir.glob("*.txt")}
    known = {name.upper(): name for name in bks}
    names = _select([known[n] for n in files if n in known], only)
    rows: list[InstanceResult] = []
    for i, name in enumerate(names):
        if progress is not None:
            progress(name, i, len(names))
        problem = read_problem(files[name.upper()])
        best = bks[name].distance
        ours = solve(problem, time_limit_s=time_limit_s, seed=seed, objective="distance")
        ok, violations = _judge(problem, ours)
        row = InstanceResult(
            name=name,
            bks=best,
            distance=ours.distance / SCALE,
            gap=gap_pct(ours.distance / SCALE, best),
            vehicles=len(ours.routes),
            runtime=float(ours.stats.get("runtime_s", math.nan)),
            feasible=ok,
            violations=violations,
        )
        if with_ortools:
            theirs = solve_ortools(problem, time_limit_s=time_limit_s)
            row.ortools_feasible, _ = _judge(problem, theirs)
            row.ortools_distance = theirs.distance / SCALE
            row.ortools_gap = gap_pct(theirs.distance / SCALE, best)
            row.ortools_vehicles = len(theirs.routes)
        rows.append(row)
    if progress is not None:
        progress("", len(names), len(names))
    return BenchmarkResult(
        time_limit_s=time_limit_s,
        seed=seed,
        instances=rows,
        mean_gap_pct=_mean([r.gap for r in rows]),
        ortools_mean_gap_pct=_mean([r.ortools_gap for r in rows]) if with_ortools else None,
        infeasible=sum(not r.feasible for r in rows),
        ortools_infeasible=sum(not r.ortools_feasible for r in rows) if with_ortools else None,
    )


def _mean(values: list[float | None]) -> float:
    present = [v for v in values if v is not None and not math.isnan(v)]
    return statistics.fmean(present) if present else math.nan
