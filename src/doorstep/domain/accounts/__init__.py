"""Merchants (tenants), console users and API keys."""
