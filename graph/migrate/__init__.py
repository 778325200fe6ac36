"""Versioned migrations: schema changes, declarative domain-graph loads and Python migrations.

``graph.migrate.runner.migrate(driver, settings)`` applies the pending ones (``kgr up``).
"""
