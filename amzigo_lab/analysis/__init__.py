"""Report builders over a governed table source (ibis), charts and report generation.

Reaches data only through a `TableSource` (the gateway, for every process outside it); never
imports `amzigo_lab.lake` (import-linter contract in pyproject.toml).
"""
