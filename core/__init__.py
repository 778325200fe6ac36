"""Foundations below every kgr package: the settings, the error root and its categories, and
logging. Nothing here imports another kgr package."""
