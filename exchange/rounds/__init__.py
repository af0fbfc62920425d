"""Matching rounds: background optimisation runs, proposals, agreements and deliveries."""
