"""Compound losses."""
