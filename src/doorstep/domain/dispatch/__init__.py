"""Depots, vehicles, drivers, shifts, plans, routes and stops."""
