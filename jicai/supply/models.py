"""Models of the supply app (issue 7)."""
