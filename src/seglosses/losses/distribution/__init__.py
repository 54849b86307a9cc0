"""Distribution losses."""
