"""The simulator: seeded scenarios that drive Doorstep through its public interfaces."""
