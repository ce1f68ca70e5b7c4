"""Driver positions, ETAs and the tracking links recipients hold."""
