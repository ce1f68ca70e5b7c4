"""Ratings, NPS, claims and support cases."""
