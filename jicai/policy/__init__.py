"""Pure VBP rules and regional policy profiles.

Nothing in this package may import Django (enforced by import-linter), so the rules
can be tested and reused without a database.
"""
