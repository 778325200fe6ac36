"""Read commands mirroring the API: entity search/show/neighbors, paths, subgraph, schema."""

from __future__ import annotations

import sys

import typer

from cli.common import handle_errors, open_driver, print_json, print_table, settings
from graph.export import ExportFormat, graphml, node_link
from graph.store import GraphStore

entity_app = typer.Typer(help="Search and inspect entities.", no_args_is_help=True)

JSON_OPT = typer.Option(False, "--json", help="Print JSON for scripts")


def _store_call(fn):
    cfg = settings()
    with open_driver(cfg) as driver:
        return fn(GraphStore(driver, cfg.neo4j_database))


@entity_app.command("search")
@handle_errors
def entity_search(
    text: str = typer.Argument("", help="Free text (fuzzy); empty lists entities"),
    type_: list[str] = typer.Option(None, "--type", "-t", help="Entity type label(s)"),
    domain: str = typer.Option(None, "--domain", "-d"),
    limit: int = typer.Option(20, "--limit", "-n"),
    cursor: str = typer.Option(None, "--cursor", help="next_cursor of the previous page"),
    json_out: bool = JSON_OPT,
) -> None:
    """Search entities by name and aliases."""
    page = _store_call(lambda s: s.search_entities(text or None, types=type_ or None,
                                                   domain=domain, limit=limit, cursor=cursor))
    if json_out:
        print_json(page)
        return
    print_table("entities", ["uid", "name", "types", "domain", "score"], [
        (e.uid, e.name, ",".join(e.types), e.domain,
         f"{e.score:.2f}" if e.score is not None else "") for e in page.items
    ])
    if page.next_cursor:
        typer.echo(f"next page: --cursor {page.next_cursor}")


@entity_app.command("show")
@handle_errors
def entity_show(uid: str, json_out: bool = JSON_OPT) -> None:
    """One entity by uid."""
    entity = _store_call(lambda s: s.get_entity(uid))
    if json_out:
        print_json(entity)
        return
    print_table(entity.uid, ["field", "value"], [
        ("name", entity.name), ("types", ", ".join(entity.types)), ("domain", entity.domain),
        ("aliases", "; ".join(entity.aliases[:10])), ("description", entity.description),
        *((k, v) for k, v in entity.properties.items()),
    ])


@entity_app.command("neighbors")
@handle_errors
def entity_neighbors(
    uid: str,
    relation_type: list[str] = typer.Option(None, "--rel", "-r", help="Relationship type(s)"),
    direction: str = typer.Option("both", "--direction", help="out, in or both"),
    limit: int = typer.Option(50, "--limit", "-n"),
    json_out: bool = JSON_OPT,
) -> None:
    """Neighbours of an entity."""
    rows = _store_call(lambda s: s.neighbors(uid, relation_types=relation_type or None,
                                             direction=direction, limit=limit))
    if json_out:
        print_json(rows)
        return
    print_table(f"neighbours of {uid}", ["direction", "relation", "uid", "name", "types"], [
        (n.direction, n.relation.type, n.entity.uid, n.entity.name, ",".join(n.entity.types))
        for n in rows
    ])


@handle_errors
def paths(
    source: str,
    target: str,
    max_hops: int = typer.Option(3, "--max-hops"),
    relation_type: list[str] = typer.Option(None, "--rel", "-r"),
    limit: int = typer.Option(10, "--limit", "-n"),
    json_out: bool = JSON_OPT,
) -> None:
    """Shortest paths between two entities (at most 4 hops)."""
    found = _store_call(lambda s: s.shortest_paths(source, target, max_hops=max_hops,
                                                   relation_types=relation_type or None,
                                                   limit=limit))
    if json_out:
        print_json(found)
        return
    rows = []
    for path in found:
        parts = [path.nodes[0].name]
        for rel, node in zip(path.relations, path.nodes[1:], strict=True):
            arrow = f"-{rel.type}->" if rel.target == node.uid else f"<-{rel.type}-"
            parts += [arrow, node.name]
        rows.append((path.length, " ".join(parts)))
    print_table(f"paths {source} .. {target}", ["hops", "path"], rows)


@handle_errors
def subgraph(
    seeds: list[str],
    hops: int = typer.Option(2, "--hops"),
    max_nodes: int = typer.Option(200, "--max-nodes"),
    max_edges: int = typer.Option(1000, "--max-edges"),
    relation_type: list[str] = typer.Option(None, "--rel", "-r", help="Relationship type(s)"),
    json_out: bool = JSON_OPT,
    export: ExportFormat = typer.Option(
        None, "--format", help="Print the subgraph as kgr's JSON (same as --json), networkx "
        "node-link JSON or GraphML (for Gephi, Cytoscape, yEd) instead of a table"),
) -> None:
    """k-hop subgraph around seed entities, with node and edge caps."""
    sub = _store_call(lambda s: s.subgraph(seeds, hops=hops, max_nodes=max_nodes,
                                           max_edges=max_edges,
                                           relation_types=relation_type or None))
    if export is ExportFormat.GRAPHML:
        sys.stdout.write(graphml(sub))
        return
    if export is ExportFormat.NODE_LINK:
        print_json(node_link(sub))
        return
    if json_out or export is ExportFormat.KGR:
        print_json(sub)
        return
    print_table(f"subgraph: {len(sub.nodes)} nodes, {len(sub.relations)} edges"
                + (" (truncated)" if sub.truncated else ""),
                ["source", "relation", "target"],
                [(r.source, r.type, r.target) for r in sub.relations[:200]])


@handle_errors
def schema(json_out: bool = JSON_OPT) -> None:
    """Entity types, relationship types and counts per domain."""
    summary = _store_call(lambda s: s.schema_summary())
    if json_out:
        print_json(summary)
        return
    print_table("domains", ["domain", "nodes", "relationships", "types", "relation types"], [
        (d.domain, d.node_count, d.relationship_count,
         ", ".join(f"{k}={v}" for k, v in d.types.items()),
         ", ".join(f"{k}={v}" for k, v in d.relation_types.items()))
        for d in summary.domains
    ])
