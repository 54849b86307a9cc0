"""Region losses."""
