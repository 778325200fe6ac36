"""V4: the finance domain from FinDKG (KGR_DATA_DIR/findkg, else downloaded and verified)."""

from graph.migrate.findkg import build_finance_graph, locate
from graph.migrate.loader import MigrationContext


def apply(ctx: MigrationContext) -> None:
    graph = build_finance_graph(locate(ctx.settings))
    ctx.create_entities(graph.entities, total=len(graph.entities), task="finance entities")
    for rel_type, rows in graph.relations.items():
        ctx.create_relations(rel_type, rows, total=len(rows), task=f"finance {rel_type}")
