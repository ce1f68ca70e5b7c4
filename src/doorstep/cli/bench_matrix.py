"""``doorstep bench matrix``: road-network build and travel-matrix figures."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from doorstep.routing.travel.base import Profile, TravelTimeError


def matrix(
    source: str = typer.Option(
        "helsinki", help="'helsinki' (bundled), a .osm.pbf/.osm path, or a place name"
    ),
    size: int = typer.Option(200, min=1, help="Random points inside the extract's bounding box"),
    profile: str = typer.Option("van", help="van, cargo_bike, walking, or all"),
    seed: int = typer.Option(42, help="Seed for the random points"),
) -> None:
    """Time the road graph build (cold and from the disk cache) and an NxN matrix."""
    from doorstep.routing.travel.bench import run_matrix_bench

    console = Console()
    try:
        profiles = list(Profile) if profile == "all" else [Profile(profile)]
    except ValueError as exc:
        raise typer.BadParameter(f"unknown profile {profile!r}", param_hint="--profile") from exc
    try:
        path, results = run_matrix_bench(source, profiles, size=size, seed=seed)
    except TravelTimeError as exc:
        Console(stderr=True).print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from exc

    first = results[0]
    console.print(f"Extract: {path}")
    console.print(
        f"{first.raw_nodes:,} nodes, {first.raw_segments:,} highway segments; "
        f"imports {first.imports_s:.2f} s, read {first.read_s:.2f} s (shared by all profiles)"
    )
    table = Table(title=f"Road network and {size}x{size} matrix (seed {seed})")
    table.add_column("")
    for r in results:
        table.add_column(r.profile.value, justify="right")
    rows = [
        ("build, cold (s)", [f"{r.build_s:.3f}" for r in results]),
        ("load from disk cache (s)", [f"{r.warm_load_s:.3f}" for r in results]),
        ("nodes / edges", [f"{r.nodes:,} / {r.edges:,}" for r in results]),
        ("after contraction", [f"{r.kept_nodes:,} / {r.kept_edges:,}" for r in results]),
        ("unreachable points", [str(r.unreachable) for r in results]),
        ("matrix (s)", [f"{r.matrix_s:.3f}" for r in results]),
        ("matrix again, memoised (s)", [f"{r.matrix_memo_s:.3f}" for r in results]),
        ("path through 10 points (s)", [f"{r.path_s:.3f}" for r in results]),
    ]
    for label, values in rows:
        table.add_row(label, *values)
    console.print(table)
    console.print(
        "Nodes/edges: the profile's largest strongly connected component. Matrix times exclude "
        "the build. Map data © OpenStreetMap contributors (ODbL)."
    )
