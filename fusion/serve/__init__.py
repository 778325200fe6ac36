"""Answering: the ask pipeline, the path scorers and the beam search over Neo4j, predicted
links, yes/no checks between two entities, the response models, and loading a published QA
version (``checkpoint``). Nothing here imports ``fusion.learn`` or the reasoner's training
(``tests/unit/test_serving_imports.py``)."""
