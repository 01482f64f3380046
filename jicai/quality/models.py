"""Models of the quality app (issue 7)."""
