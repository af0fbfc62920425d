"""Stored outcomes of POST requests sent with an Idempotency-Key (see exchange/core/idempotency.py)."""
