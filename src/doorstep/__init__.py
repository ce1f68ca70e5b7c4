"""Doorstep: a self-hosted last-mile delivery platform built around the recipient."""

__version__ = "0.1.0"
