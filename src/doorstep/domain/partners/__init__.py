"""Delivery partners: fleets and couriers that take hand-offs and report back."""
