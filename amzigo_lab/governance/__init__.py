"""Governance: identity, policy, session, audit, alerts — the only door to data for people."""
