"""Alembic migrations of the nas-service schema (shipped as a package so `nas migrate` finds them when installed)."""
