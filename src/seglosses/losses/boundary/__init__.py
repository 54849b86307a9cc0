"""Boundary losses."""
