"""QA commands (placeholder: filled in by the fusion work).

Adds ``kgr train qa`` / ``kgr eval qa`` to ``cli.groups`` and defines ``ask`` (a command
function registered in cli/main.py as ``kgr ask``).
"""
