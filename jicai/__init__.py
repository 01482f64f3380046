"""Jicai (集采): drug volume-based procurement from award to settlement."""

__version__ = "0.1.0"
