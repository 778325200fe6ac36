"""The ``kgr`` command line."""
