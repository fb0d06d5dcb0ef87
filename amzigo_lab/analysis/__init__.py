"""Report builders over a governed table source (ibis), charts and report generation.

Reaches data only through a `TableSource` (the gateway, for every process outside it); never
imports the lake package (import-linter contract in pyproject.toml).
"""
