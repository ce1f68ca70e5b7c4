"""Delivery slots offered at checkout, their capacity and reservations."""
