"""Plans that keep their promises: a local search after PyVRP's that moves stops away from the
end of their windows (ADR 0014).

PyVRP 0.14 has no soft time windows: a window's end is hard or absent, so "serve this stop ten
minutes before its window closes, where the day allows" cannot be said to it. Tightening the
windows of the stops that end up late and searching again (the rounds this module replaces)
cost 3.5-4.9 % objective on the 1,000-order Monaco day and was never kept by the cost guard.
So the trade is made here, by hand, on the plan PyVRP found: a first-improvement local search
whose cost is driving time plus ``lambda`` per *risk*, where a stop's risk is one for starting
after its ``target_end_s`` and one for starting in the last :data:`LAST_15_MIN_S` of its window
(the share a plan reports as ``last_15_min_pct``).

* **Exact timing.** Routes are timed as :func:`~doorstep.routing.route_timing.drive` times them
  (wait for a window to open, a break where the vehicle is, the end leg), from the vehicle's
  start after its fixed stops; a move is kept only if every window, the shift's end and the
  capacity still hold. Service starts do not depend on the late departure rule (a route leaves
  later only by its first stop's wait), so the stored schedule's slack is the one measured here.
  The result goes back through PyVRP (``Solution.is_feasible``, its objective) and
  :func:`~doorstep.routing.route_timing.planned_route`; if either disagrees, the plan PyVRP
  found is kept.
* **Moves**, tried for each stop at risk: the stop earlier in its route; one to three stops from
  just before it to just after it; the stretch before it reversed (2-opt); the stop, or one of
  the few stops before it, into another route next to one of its nearest stops. A break stays
  glued to the stop it follows (PyVRP's break client sits at that stop's address), so a move
  never changes where a break is taken.
* **Acceptance.** A move must lower the risk and cost at most ``lambda`` seconds of driving per
  unit of risk removed (or keep the risk and drive less), and the plan's driving may not pass
  ``1 + problem.target_cost_tolerance`` times the plan's driving before the repair. ``lambda``
  rises over :data:`LAMBDAS`, so the cheapest fixes take the budget first.
* **Bounds.** At most :data:`MAX_EVALUATIONS` route evaluations and the caller's deadline;
  no randomness, so the result depends only on the plan it starts from (unless the deadline
  cuts it short, which a time-limited plan accepts anyway).

Why hand-written: no maintained Python library does a penalised local search on top of a given
VRPTW solution with these timing rules (OR-Tools' soft upper bounds would mean a second solver
and its own timing model; PyVRP's operators only see hard windows). The evaluation is plain
Python with incremental prefixes and an early stop once a route's times rejoin the old ones;
on the 1,000-stop day it takes a small fraction of the search (figures in ADR 0014).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pyvrp

from doorstep.routing.assemble import visits
from doorstep.routing.problem import Problem, VehicleSpec
from doorstep.routing.pyvrp_model import PyvrpModel, VehicleStart, is_allowed
from doorstep.routing.route_timing import planned_route
from doorstep.routing.search import as_solution
from doorstep.routing.travel.base import UNREACHABLE

LAST_15_MIN_S = 900
"""A stop starting less than this before its window's end counts as a risk (the plans' reported
``last_15_min_pct`` uses the same 15 minutes)."""

LAMBDAS = (0, 60, 180, 600, 1800, 3600)
"""Seconds of driving a move may add per unit of risk it removes, tried in this order."""

MAX_SWEEPS = 4
"""Sweeps over the stops at risk per ``lambda`` (a sweep that changes nothing ends it)."""

MAX_EVALUATIONS = 400_000
"""Most route evaluations in one repair (deterministic bound)."""

NEAREST = 12
"""Nearest stops next to which a stop moved to another route may go."""

BEFORE = 6
"""How many stops just before a stop at risk may be moved to another route to make room."""

SEGMENT, SHIFT_AHEAD, REVERSE = 3, 8, 6
"""Longest stretch moved from before a stop at risk to after it, how far past it, and the
longest stretch reversed."""

_HUGE = 1 << 40  # an unreachable leg: arrives after every window and shift end
_NONE = 1 << 50  # no threshold


@dataclass
class _Items:
    """Every visit the repair may move, by number: jobs and breaks (``loc`` -1: where one is)."""

    loc: list[int] = field(default_factory=list)
    tw_start: list[int] = field(default_factory=list)
    tw_end: list[int] = field(default_factory=list)
    service: list[int] = field(default_factory=list)
    after_target: list[int] = field(default_factory=list)  # risk when starting after this
    last_15: list[int] = field(default_factory=list)  # risk when starting after this
    demand: list[tuple[int, ...]] = field(default_factory=list)
    client: list[int] = field(default_factory=list)  # PyVRP client index

    def add(self, loc: int, start: int, end: int, service: int, client: int) -> int:
        self.loc.append(loc)
        self.tw_start.append(start)
        self.tw_end.append(end)
        self.service.append(service)
        self.after_target.append(_NONE)
        self.last_15.append(_NONE)
        self.demand.append(())
        self.client.append(client)
        return len(self.loc) - 1


@dataclass
class _Route:
    """One vehicle's movable visits and, per position ``i``, the time and place before visit
    ``i`` and the driving and risk up to it (index ``len(items)``: after the last)."""

    k: int
    vehicle: VehicleSpec
    dur: list[list[int]]
    t0: int
    loc0: int
    capacity: tuple[int, ...]
    items: list[int]
    at_time: list[int] = field(default_factory=list)
    at_loc: list[int] = field(default_factory=list)
    drv: list[int] = field(default_factory=list)
    risk: list[int] = field(default_factory=list)
    driving: int = 0
    total_risk: int = 0
    load: list[int] = field(default_factory=list)
    cost: int = 0  # PyVRP's cost of the route (distance and duration, see pyvrp_model)

    def leg_to_end(self, loc: int) -> int:
        end = self.vehicle.end_location
        return 0 if end is None else self.dur[loc][end]

    def next_loc(self, t: _Items, i: int) -> int | None:
        """Where the vehicle goes after position ``i - 1``: visit ``i``'s place or the end."""
        if i < len(self.items):
            return t.loc[self.items[i]]
        return self.vehicle.end_location

    def leg(self, a: int, b: int | None) -> int:
        return 0 if b is None else self.dur[a][b]


def _time(t: _Items, r: _Route) -> None:
    """Fill ``r``'s prefixes (its visits are feasible)."""
    now, loc, drv, risk = r.t0, r.loc0, 0, 0
    r.at_time, r.at_loc, r.drv, r.risk = [now], [loc], [0], [0]
    dur = r.dur
    for x in r.items:
        at = loc if t.loc[x] < 0 else t.loc[x]
        leg = dur[loc][at]
        start = max(now + leg, t.tw_start[x])
        drv += leg
        risk += (start > t.after_target[x]) + (start > t.last_15[x])
        now, loc = start + t.service[x], at
        r.at_time.append(now)
        r.at_loc.append(loc)
        r.drv.append(drv)
        r.risk.append(risk)
    r.driving = drv + r.leg_to_end(loc)
    r.total_risk = risk
    dims = len(r.capacity)
    r.load = [sum(t.demand[x][d] for x in r.items if t.demand[x]) for d in range(dims)]


def _evaluate(
    t: _Items, r: _Route, a: int, middle: Sequence[int], j: int
) -> tuple[int, int] | None:
    """(driving, risk) of ``r`` driving ``items[:a] + middle + items[j:]``, None if that breaks
    a window or the shift's end. Stops early once the times rejoin the old route's.

    The two loops time a visit with the same lines on purpose: this is the repair's inner loop
    (a few hundred thousand evaluations per repair), kept free of a function call per visit."""
    now, loc, drv, risk = r.at_time[a], r.at_loc[a], r.drv[a], r.risk[a]
    dur = r.dur
    loc_of, opens, closes, service = t.loc, t.tw_start, t.tw_end, t.service
    after, last = t.after_target, t.last_15
    for x in middle:
        at = loc_of[x]
        if at < 0:
            at = loc
        leg = dur[loc][at]
        start = now + leg
        if start < opens[x]:
            start = opens[x]
        if start > closes[x]:
            return None
        drv += leg
        risk += (start > after[x]) + (start > last[x])
        now, loc = start + service[x], at
    items, at_time, at_loc = r.items, r.at_time, r.at_loc
    for i in range(j, len(items)):
        if now == at_time[i] and loc == at_loc[i]:
            return drv + r.driving - r.drv[i], risk + r.total_risk - r.risk[i]
        x = items[i]
        at = loc_of[x]
        if at < 0:
            at = loc
        leg = dur[loc][at]
        start = now + leg
        if start < opens[x]:
            start = opens[x]
        if start > closes[x]:
            return None
        drv += leg
        risk += (start > after[x]) + (start > last[x])
        now, loc = start + service[x], at
    n = len(items)
    if now == at_time[n] and loc == at_loc[n]:
        return drv + r.driving - r.drv[n], risk + r.total_risk - r.risk[n]
    back = r.leg_to_end(loc)
    end = now + back
    if end > r.vehicle.shift_end_s:
        return None
    return drv + back, risk


@dataclass
class _Move:
    """A candidate: new visits for one or two routes (with their PyVRP cost), and what it
    changes."""

    gain: float  # cost delta in seconds + lambda x risk delta (negative: better)
    driving: int
    risk: int
    cost: int
    routes: list[tuple[_Route, list[int], int]]


@dataclass
class RepairFigures:
    """What the repair did, for the plan's stats."""

    moves: int = 0
    evaluations: int = 0
    seconds: float = 0.0
    risk_before: int = 0
    risk_after: int = 0
    driving_before: int = 0
    driving_after: int = 0
    cost_before: int = 0
    cost_after: int = 0
    kept: bool = True  # False: PyVRP or planned_route disagreed and the search's plan was kept

    def summary(self) -> str:
        extra = 100 * (self.driving_after - self.driving_before) / max(1, self.driving_before)
        dearer = 100 * (self.cost_after - self.cost_before) / max(1, self.cost_before)
        return (
            f"{self.moves} moves, risk {self.risk_before} -> {self.risk_after}, driving "
            f"{self.driving_before} -> {self.driving_after} s ({extra:+.2f} %), routes' cost "
            f"{self.cost_before} -> {self.cost_after} ({dearer:+.2f} %), "
            f"{self.evaluations} evaluations, {self.seconds:.2f} s"
            + ("" if self.kept else ", not kept")
        )


class _Repair:
    def __init__(
        self,
        problem: Problem,
        model: PyvrpModel,
        starts: list[VehicleStart],
        assigned: dict[int, list[int]],
        deadline: float,
    ) -> None:
        self.problem, self.model, self.deadline = problem, model, deadline
        types = model.data.vehicle_types()
        self.cost_unit = max(1, max((int(vt.unit_duration_cost) for vt in types), default=1))
        self.t = _Items()
        self.routes: list[_Route] = []
        self.evaluations = 0
        matrices: dict[str | None, list[list[int]]] = {}
        for k in sorted(assigned):
            vehicle = problem.vehicles[k]
            if vehicle.travel not in matrices:
                durations, distances = problem.matrices(vehicle)
                broken = (durations >= UNREACHABLE) | (distances >= UNREACHABLE)
                matrices[vehicle.travel] = np.where(broken, _HUGE, durations).tolist()
            items = self._items(k, assigned[k])
            if items is None:
                continue
            start = starts[k]
            route = _Route(
                k,
                vehicle,
                matrices[vehicle.travel],
                start.time,
                start.location,
                start.capacity,
                items,
            )
            _time(self.t, route)
            cost = self._cost(route, items)
            if cost is None:
                continue
            route.cost = cost
            self.routes.append(route)
        self.where: dict[int, tuple[_Route, int]] = {}
        for r in self.routes:
            self._index(r)
        self.nearest = self._nearest()

    def _items(self, k: int, clients: list[int]) -> list[int] | None:
        """Vehicle ``k``'s clients as items; None (left alone) when a client is one it may not
        serve (taken off after solving) or a second break."""
        t, model, vehicle = self.t, self.model, self.problem.vehicles[k]
        items: list[int] = []
        breaks = 0
        for c in clients:
            if c < len(model.jobs):
                if not is_allowed(model, c, k):
                    return None
                job = model.jobs[c]
                x = t.add(job.location, job.tw_start_s, job.tw_end_s, job.service_s, c)
                if job.has_target and job.target_end_s is not None:
                    t.after_target[x] = job.target_end_s
                if job.tw_end_s - job.tw_start_s < 86_400:
                    t.last_15[x] = job.tw_end_s - LAST_15_MIN_S
                t.demand[x] = job.demand
            else:
                brk = vehicle.brk
                breaks += 1
                if brk is None or breaks > 1:
                    return None
                x = t.add(-1, brk.earliest_start_s, brk.latest_start_s, brk.duration_s, c)
            items.append(x)
        return items

    def _cost(self, r: _Route, items: list[int]) -> int | None:
        """PyVRP's cost of ``r`` visiting ``items`` (None: PyVRP finds it infeasible)."""
        vehicle_type = self.model.vehicle_type[r.k]
        if vehicle_type is None:
            return None
        route = pyvrp.Route(self.model.data, [self.t.client[x] for x in items], vehicle_type)
        if not route.is_feasible():
            return None
        return int(route.distance_cost() + route.duration_cost())

    def _index(self, r: _Route) -> None:
        for i, x in enumerate(r.items):
            self.where[x] = (r, i)

    def _nearest(self) -> dict[int, list[int]]:
        """Each job item's :data:`NEAREST` nearest job items (there and back, default matrix)."""
        jobs = [x for x in range(len(self.t.loc)) if self.t.loc[x] >= 0]
        if len(jobs) < 2:
            return {}
        locs = np.asarray([self.t.loc[x] for x in jobs])
        d = self.problem.durations[np.ix_(locs, locs)].astype(np.float64)
        d = d + d.T
        np.fill_diagonal(d, np.inf)
        k = min(NEAREST, len(jobs) - 1)
        near = np.argsort(d, axis=1, kind="stable")[:, :k]
        return {x: [jobs[i] for i in row] for x, row in zip(jobs, near.tolist(), strict=True)}

    # --- the search ---------------------------------------------------------------------------

    def _is_break(self, x: int) -> bool:
        return self.t.loc[x] < 0

    def _unit_end(self, r: _Route, i: int) -> int:
        """End (exclusive) of the unit starting at job ``i``: the job and a break after it."""
        items = r.items
        return i + 2 if i + 1 < len(items) and self._is_break(items[i + 1]) else i + 1

    def _insertable(self, r: _Route, q: int) -> bool:
        """Whether a visit may go before position ``q`` (never between a stop and its break)."""
        return q == len(r.items) or not self._is_break(r.items[q])

    def _eval(self, r: _Route, a: int, middle: Sequence[int], j: int) -> tuple[int, int] | None:
        self.evaluations += 1
        return _evaluate(self.t, r, a, middle, j)

    def risky(self) -> list[int]:
        """Items at risk, by route then position."""
        out = []
        t = self.t
        for r in self.routes:
            for i, x in enumerate(r.items):
                if r.risk[i + 1] > r.risk[i] and t.loc[x] >= 0:
                    out.append(x)
        return out

    def total(self) -> tuple[int, int]:
        return sum(r.driving for r in self.routes), sum(r.total_risk for r in self.routes)

    def candidates(self, x: int, lam: float, room: int, cost_room: int) -> _Move | None:
        """The best acceptable move that helps item ``x``; ``room`` and ``cost_room``: driving
        and cost left in the budget."""
        r, p = self.where[x]
        items = r.items
        best: _Move | None = None

        def consider(
            changes: list[tuple[_Route, int, list[int], int, tuple[int, int] | None]],
        ) -> None:
            """Keep the best acceptable change; a change is (route, a, middle, j, figures): the
            route's visits become ``items[:a] + middle + items[j:]`` (built only when the
            change lowers the risk), ``figures`` its :func:`_evaluate`."""
            nonlocal best
            dd = dr = 0
            for route, _, _, _, figures in changes:
                if figures is None:
                    return
                dd += figures[0] - route.driving
                dr += figures[1] - route.total_risk
            if dr > 0 or (dr == 0 and dd >= 0) or dd > room:
                return
            dc, routes = 0, []
            for route, a, middle, j, _ in changes:
                new = [*route.items[:a], *middle, *route.items[j:]]
                cost = self._cost(route, new)
                if cost is None:
                    return
                dc += cost - route.cost
                routes.append((route, new, cost))
            seconds = dc / self.cost_unit  # the cost as seconds of route duration
            if dc > cost_room or (dr == 0 and seconds >= 0) or seconds > -lam * dr:
                return
            gain = seconds + lam * dr
            if best is None or gain < best.gain:
                best = _Move(gain, dd, dr, dc, routes)

        ue = self._unit_end(r, p)
        unit = items[p:ue]
        n = len(items)
        # The stop earlier in its route.
        for q in range(p - 1, -1, -1):
            if self._insertable(r, q):
                middle = [*unit, *items[q:p]]
                consider([(r, q, middle, ue, self._eval(r, q, middle, ue))])
        # One to three stops from just before it to just after it.
        for i in range(max(0, p - SHIFT_AHEAD), p):
            if self._is_break(items[i]):
                continue
            e = i
            for _ in range(SEGMENT):
                e = self._unit_end(r, e)
                if e > p:
                    break
                seg = items[i:e]
                for q in range(ue, min(n, ue + SHIFT_AHEAD) + 1):
                    if self._insertable(r, q):
                        middle = [*items[e:q], *seg]
                        consider([(r, i, middle, q, self._eval(r, i, middle, q))])
        # The stretch before it reversed (no break inside or right after it).
        for i in range(max(0, p - REVERSE), p):
            if any(self._is_break(y) for y in items[i : p + 2]):
                continue
            rev = items[i : p + 1][::-1]
            consider([(r, i, rev, p + 1, self._eval(r, i, rev, p + 1))])
        # The stop, or one just before it, into another route next to one of its nearest.
        if len([y for y in items if not self._is_break(y)]) > 1:
            for i in range(p, max(-1, p - BEFORE - 1), -1):
                y = items[i]
                if self._is_break(y) or self._unit_end(r, i) != i + 1:
                    continue
                removed = self._eval(r, i, [], i + 1)
                if removed is None:
                    continue
                tried: set[tuple[int, int]] = set()
                for z in self.nearest.get(y, []):
                    if z not in self.where:  # on a route the repair leaves alone
                        continue
                    r2, pz = self.where[z]
                    if r2 is r:
                        continue
                    if not is_allowed(self.model, self.t.client[y], r2.k):
                        continue
                    demand = self.t.demand[y]
                    if any(
                        ld + d > c for ld, d, c in zip(r2.load, demand, r2.capacity, strict=True)
                    ):
                        continue
                    for q in (pz, self._unit_end(r2, pz)):
                        if (r2.k, q) in tried or not self._insertable(r2, q):
                            continue
                        tried.add((r2.k, q))
                        into = self._eval(r2, q, [y], q)
                        consider([(r, i, [], i + 1, removed), (r2, q, [y], q, into)])
        return best

    def apply(self, move: _Move) -> None:
        for r, items, cost in move.routes:
            r.items = items
            r.cost = cost
            _time(self.t, r)
            self._index(r)

    def run(self, tolerance: float) -> RepairFigures:
        started = time.perf_counter()
        driving0, risk0 = self.total()
        cost0 = sum(r.cost for r in self.routes)
        figures = RepairFigures(risk_before=risk0, driving_before=driving0, cost_before=cost0)
        budget = int(driving0 * (1 + tolerance))
        cost_budget = int(cost0 * (1 + tolerance))
        driving, cost = driving0, cost0
        done = False
        for lam in LAMBDAS:
            for _ in range(MAX_SWEEPS):
                changed = False
                for x in self.risky():
                    if self.evaluations >= MAX_EVALUATIONS or time.perf_counter() >= self.deadline:
                        done = True
                        break
                    r, p = self.where[x]
                    if r.risk[p + 1] == r.risk[p]:
                        continue  # no longer at risk
                    move = self.candidates(x, lam, budget - driving, cost_budget - cost)
                    if move is not None:
                        self.apply(move)
                        driving += move.driving
                        cost += move.cost
                        figures.moves += 1
                        changed = True
                if done or not changed:
                    break
            if done:
                break
        figures.driving_after, figures.risk_after = self.total()
        figures.cost_after = sum(r.cost for r in self.routes)
        figures.evaluations = self.evaluations
        figures.seconds = time.perf_counter() - started
        return figures

    def assigned(self, original: dict[int, list[int]]) -> dict[int, list[int]]:
        result = dict(original)
        for r in self.routes:
            result[r.k] = [self.t.client[x] for x in r.items]
        return result


def keep_promises(
    problem: Problem,
    model: PyvrpModel,
    starts: list[VehicleStart],
    assigned: dict[int, list[int]],
    deadline: float,
) -> tuple[dict[int, list[int]], pyvrp.Solution | None, RepairFigures]:
    """Move stops away from their windows' end in the feasible plan ``assigned`` (vehicle
    index -> PyVRP client indices), adding at most ``problem.target_cost_tolerance`` to its
    driving time (see the module docstring). Returns the plan, its PyVRP solution (None when
    nothing moved) and what the repair did."""
    repair = _Repair(problem, model, starts, assigned, deadline)
    figures = repair.run(problem.target_cost_tolerance)
    if not figures.moves:
        return assigned, None, figures
    result = repair.assigned(assigned)
    solution = as_solution(model, result)
    if not solution.is_feasible() or not _times_hold(problem, model, result):
        figures.kept = False
        figures.driving_after, figures.risk_after = figures.driving_before, figures.risk_before
        figures.cost_after = figures.cost_before
        return assigned, None, figures
    return result, solution, figures


def _times_hold(problem: Problem, model: PyvrpModel, assigned: dict[int, list[int]]) -> bool:
    """Whether every route of ``assigned`` times without a violation in
    :func:`~doorstep.routing.route_timing.planned_route` (the stored schedule's timing)."""
    jobs_by_id = {j.id: j for j in problem.jobs}
    for k, clients in assigned.items():
        vehicle = problem.vehicles[k]
        items = visits(problem, model, k, clients, jobs_by_id)
        _, broken = planned_route(problem, vehicle, items, late_start=not vehicle.fixed_jobs)
        if broken:
            return False
    return True
