"""Pure routing: the optimiser and travel-time providers. No database, no web."""
