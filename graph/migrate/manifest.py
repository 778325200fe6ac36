"""Declarative domain-graph loads: the manifest format, parsing its files, and validation.

A manifest (YAML or JSON) names a domain and the files to load, relative to the manifest::

    domain: example                 # entity uids become "<domain>:<id>"
    description: A tiny example graph
    default_type: Thing             # type of triples' entities not listed in a node file
    nodes:                          # header row; columns id, name, type, aliases ('|'), description
      - file: nodes.tsv             #   plus the declared properties
        type: Disease               # optional: the label when there is no 'type' column
        properties: {prevalence: float}
    relationships:                  # header row; columns source, target, type + properties
      - file: relations.tsv
        type: HAS_PHENOTYPE         # optional: when there is no 'type' column
        properties: {frequency: str}
    triples:                        # no header: head <TAB> relation <TAB> tail
      - file: triples.tsv
        uppercase: true             # relation names upper-cased (default)
    phrasings:                      # optional: how questions name a relationship type of the
      TREATS:                       #   load, "{x}" for the entity asked about
        forward: ["treated by {x}", "that {x} treats"]   # the answer is the tail
        backward: ["that treat {x}", "used against {x}"]  # the answer is the head
    type_words:                     # optional: other words questions use for an entity type
      Drug: [medications, medication, medicines]
    sensitive: [prevalence]         # optional: node properties stored but shown only to API
                                    #   keys with the sensitive scope (``kgr keys --sensitive``)

Files are UTF-8, tab-separated (``.csv`` files: comma-separated). Lines that are empty or start
with ``#`` are skipped. Property types: str, int, float, bool, list (``|``-separated strings).
Everything is checked before anything is written; every problem is reported with file and line.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from neo4j import Driver, RoutingControl
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from graph.driver import translate_errors
from graph.migrate.exceptions import Problem
from graph.schema import ENTITY_LABEL, is_identifier, relation_type_problem

PropType = Literal["str", "int", "float", "bool", "list"]
NODE_COLUMNS = ("id", "name", "type", "aliases", "description")
REL_COLUMNS = ("source", "target", "type")
# what ``sensitive:`` may not name: shown as an entity's own fields, and ``name``/``aliases`` are
# what full-text search and question linking match (the full-text index covers only those two)
SENSITIVE_FORBIDDEN = frozenset({*NODE_COLUMNS, "uid", "domain", "source_id"})
MAX_PROBLEMS = 1000
DOMAIN_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.")

# whether the domain has an entity of the type (type words declared for a type the load does
# not create); compared as a value
DOMAIN_HAS_ENTITY_TYPE_QUERY = """
MATCH (n:Entity {domain: $domain})
WHERE $type IN labels(n)
RETURN count(n) > 0 AS found LIMIT 1
"""
# whether the domain has a relationship of the type (phrasings declared for a type the load
# itself does not create); the type is compared as a value, so any string is safe here
DOMAIN_HAS_RELATION_TYPE_QUERY = """
MATCH (:Entity {domain: $domain})-[r]->()
WHERE type(r) = $type
RETURN count(r) > 0 AS found LIMIT 1
"""
EXISTING_UIDS_QUERY = """
UNWIND $uids AS uid
MATCH (n:Entity {uid: uid})
RETURN n.uid AS uid
"""


class _FileSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    file: str
    delimiter: str | None = Field(default=None, description="default: tab, ',' for .csv")


class NodeFileSpec(_FileSpec):
    type: str | None = None
    properties: dict[str, PropType] = Field(default_factory=dict)


class RelationFileSpec(_FileSpec):
    type: str | None = None
    properties: dict[str, PropType] = Field(default_factory=dict)


class TriplesFileSpec(_FileSpec):
    uppercase: bool = True


MAX_PHRASINGS = 30
MAX_PHRASING_CHARS = 200
TYPE_WORD_RE = re.compile(r"^[a-z][a-z '-]{0,58}[a-z]$")


class PhrasingSpec(BaseModel):
    """How questions name one relationship type, read forwards (``x -REL-> answer``) and
    backwards (``answer -REL-> x``); a direction left empty keeps the phrasings kgr derives."""

    model_config = ConfigDict(extra="forbid")
    forward: list[str] = Field(default_factory=list, max_length=MAX_PHRASINGS)
    backward: list[str] = Field(default_factory=list, max_length=MAX_PHRASINGS)


def phrasing_problem(phrasing: str) -> str | None:
    """Why a declared phrasing is unusable, or None: it needs exactly one ``{x}`` (the entity
    asked about) and some words besides."""
    if phrasing.count("{x}") != 1:
        return "needs exactly one {x} (the entity the question names)"
    if "{" in phrasing.replace("{x}", "") or "}" in phrasing.replace("{x}", ""):
        return "has braces other than {x}"
    if not phrasing.replace("{x}", "").strip():
        return "has no words besides {x}"
    if len(phrasing) > MAX_PHRASING_CHARS:
        return f"is longer than {MAX_PHRASING_CHARS} characters"
    return None


class Manifest(BaseModel):
    """A declarative load: one domain, its node, relationship and triples files, and how
    questions name its relationship types."""

    model_config = ConfigDict(extra="forbid")
    domain: str = Field(min_length=1, max_length=64)
    description: str | None = None
    default_type: str = "Thing"
    nodes: list[NodeFileSpec] = Field(default_factory=list)
    relationships: list[RelationFileSpec] = Field(default_factory=list)
    triples: list[TriplesFileSpec] = Field(default_factory=list)
    phrasings: dict[str, PhrasingSpec] = Field(default_factory=dict)
    type_words: dict[str, list[str]] = Field(default_factory=dict)
    sensitive: list[str] = Field(default_factory=list, max_length=100)

    def files(self) -> list[str]:
        return [s.file for s in (*self.nodes, *self.relationships, *self.triples)]


def read_manifest(path: Path) -> tuple[Manifest | None, list[Problem]]:
    """Parse and check a manifest file (structure, domain, file paths)."""
    name = str(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, [Problem(name, None, f"not valid UTF-8: {exc.reason} at byte {exc.start}")]
    except OSError as exc:
        return None, [Problem(name, None, f"cannot read: {exc.strerror}")]
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        line = getattr(exc, "lineno", None)
        mark = getattr(exc, "problem_mark", None)
        if mark is not None:
            line = mark.line + 1
        return None, [Problem(name, line, f"cannot parse the manifest: {exc}")]
    if not isinstance(data, dict):
        return None, [Problem(name, None, "the manifest must be a mapping")]
    try:
        manifest = Manifest.model_validate(data)
    except ValidationError as exc:
        return None, [
            Problem(name, None, f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}")
            for err in exc.errors()
        ]
    problems: list[Problem] = []
    if not set(manifest.domain) <= DOMAIN_CHARS or not manifest.domain[0].isalnum():
        problems.append(Problem(name, None, f"domain {manifest.domain!r}: use letters, digits, "
                                            "'_', '-' and '.', starting with a letter or digit"))
    if not is_identifier(manifest.default_type) or manifest.default_type == ENTITY_LABEL:
        problems.append(Problem(name, None,
                                f"default_type {manifest.default_type!r} is not a valid label"))
    if not manifest.files() and not manifest.phrasings and not manifest.type_words:
        problems.append(Problem(name, None, "the manifest names no nodes, relationships, "
                                            "triples, phrasings or type words"))
    for rel in manifest.files():
        target = (path.parent / rel)
        if Path(rel).is_absolute() or ".." in Path(rel).parts:
            problems.append(Problem(name, None, f"file {rel!r} must be a relative path inside "
                                                "the migration's folder"))
        elif not target.is_file():
            problems.append(Problem(name, None, f"file {rel!r} does not exist"))
    specs: list[NodeFileSpec | RelationFileSpec] = [*manifest.nodes, *manifest.relationships]
    for spec in specs:
        for prop in spec.properties:
            if not is_identifier(prop):
                problems.append(Problem(name, None, f"property name {prop!r} is not an identifier"))
    node_properties = {prop for spec in manifest.nodes for prop in spec.properties}
    for prop in manifest.sensitive:
        # core properties are shown as fields of every entity and searched by name: they
        # cannot be hidden, so declaring them sensitive would promise what kgr does not do
        if prop in SENSITIVE_FORBIDDEN:
            problems.append(Problem(name, None, f"sensitive: {prop!r} is a core property of "
                                                "every entity and cannot be hidden"))
        elif prop not in node_properties:
            problems.append(Problem(name, None, f"sensitive: {prop!r} is not a property "
                                                "declared under a node file's 'properties'"))
    for rel_type, declared in manifest.phrasings.items():
        problem = relation_type_problem(rel_type)
        if problem is not None:
            problems.append(Problem(name, None, f"phrasings: {problem}"))
        if not declared.forward and not declared.backward:
            problems.append(Problem(name, None, f"phrasings.{rel_type}: give forward and/or "
                                                "backward phrasings"))
        for direction, phrasings in (("forward", declared.forward),
                                     ("backward", declared.backward)):
            for phrasing in phrasings:
                why = phrasing_problem(phrasing)
                if why is not None:
                    problems.append(Problem(name, None, f"phrasings.{rel_type}.{direction}: "
                                                        f"{phrasing[:60]!r} {why}"))
    for entity_type, type_words in manifest.type_words.items():
        if not is_identifier(entity_type) or entity_type == ENTITY_LABEL:
            problems.append(Problem(name, None, f"type_words: {entity_type!r} is not an entity "
                                                "type name"))
        if not 1 <= len(type_words) <= MAX_PHRASINGS:
            problems.append(Problem(name, None, f"type_words.{entity_type}: give 1 to "
                                                f"{MAX_PHRASINGS} words"))
        for word in type_words:
            if not TYPE_WORD_RE.match(str(word)):
                problems.append(Problem(name, None, f"type_words.{entity_type}: {str(word)[:60]!r} "
                                                    "is not a lower-case word or phrase"))
                continue
            # a type word inside a phrasing would read as a type noun there and split the hop
            # ("members" for a type: "that are members of {x}" would become two hops)
            clash = re.compile(rf"\b{re.escape(str(word))}\b", re.IGNORECASE)
            for rel_type, declared in manifest.phrasings.items():
                used = next((p for p in (*declared.forward, *declared.backward)
                             if clash.search(p)), None)
                if used is not None:
                    problems.append(Problem(name, None, f"type_words.{entity_type}: {word!r} "
                                                        f"occurs in phrasing {used!r} of "
                                                        f"{rel_type}; it would split that hop"))
    return manifest, problems


def referenced_files(manifest_path: Path) -> list[Path]:
    """The data files a manifest reads (those that exist), for its checksum."""
    manifest, _ = read_manifest(manifest_path)
    if manifest is None:
        return []
    paths = [manifest_path.parent / f for f in manifest.files()]
    return [p for p in paths if p.is_file()]


@dataclass
class ParsedLoad:
    """A validated load, ready to write: entity rows and relationship rows by type."""

    domain: str
    entities: list[dict[str, Any]] = field(default_factory=list)
    relations: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    # uids referenced by relationships but not defined in the load -> first reference
    pending_ends: dict[str, tuple[str, int]] = field(default_factory=dict)
    # relationship type -> (forward, backward) phrasings the manifest declares: of a type the
    # load creates or the domain has (``check_against_graph``)
    phrasings: dict[str, tuple[list[str], list[str]]] = field(default_factory=dict)
    # entity type -> other words for it (the same rule: a type of the load or the domain)
    type_words: dict[str, list[str]] = field(default_factory=dict)
    # node properties returned only to keys with the sensitive scope
    sensitive: list[str] = field(default_factory=list)
    manifest_file: str = ""

    @property
    def relation_count(self) -> int:
        return sum(len(rows) for rows in self.relations.values())

    def add_problem(self, file: str, line: int | None, message: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(Problem(file, line, message))


def _lines(path: Path, label: str, load: ParsedLoad, delimiter: str
           ) -> Iterator[tuple[int, list[str]]]:
    """(line number, fields) of the data lines; encoding errors become problems."""
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                load.add_problem(label, number,
                                 f"not valid UTF-8 ({exc.reason} at column {exc.start + 1})")
                continue
            text = text.rstrip("\r\n")
            if number == 1 and text.startswith("\ufeff"):
                text = text[1:]
            if not text.strip() or text.startswith("#"):
                continue
            if delimiter == "\t":
                fields = text.split("\t")
            else:
                fields = next(csv.reader([text], delimiter=delimiter))
            yield number, [f.strip() for f in fields]


def _convert(value: str, kind: PropType) -> Any:
    if value == "":
        return None
    if kind == "int":
        return int(value)
    if kind == "float":
        return float(value)
    if kind == "bool":
        lowered = value.lower()
        if lowered in ("true", "1", "yes"):
            return True
        if lowered in ("false", "0", "no"):
            return False
        raise ValueError(f"{value!r} is not a boolean")
    if kind == "list":
        return [v.strip() for v in value.split("|") if v.strip()]
    return value


def _delimiter(spec: _FileSpec) -> str:
    if spec.delimiter:
        return spec.delimiter
    return "," if spec.file.lower().endswith(".csv") else "\t"


def _header(lines: Iterator[tuple[int, list[str]]], label: str, load: ParsedLoad,
            known: tuple[str, ...], properties: dict[str, PropType], required: tuple[str, ...]
            ) -> list[str] | None:
    first = next(lines, None)
    if first is None:
        load.add_problem(label, None, "the file is empty (a header row is needed)")
        return None
    number, header = first
    ok = True
    for column in header:
        if column not in known and column not in properties:
            load.add_problem(label, number, f"unknown column {column!r}; known: "
                             f"{', '.join([*known, *properties])} (declare extra columns under "
                             "'properties' in the manifest)")
            ok = False
    for column in required:
        if column not in header:
            load.add_problem(label, number, f"missing required column {column!r}")
            ok = False
    if len(set(header)) != len(header):
        load.add_problem(label, number, "duplicate column names")
        ok = False
    return header if ok else None


def _typed_props(record: dict[str, str], properties: dict[str, PropType], label: str,
                 number: int, load: ParsedLoad) -> dict[str, Any] | None:
    props: dict[str, Any] = {}
    ok = True
    for prop, kind in properties.items():
        try:
            value = _convert(record.get(prop, ""), kind)
        except ValueError:
            load.add_problem(label, number,
                             f"column {prop!r}: {record.get(prop)!r} is not a valid {kind}")
            ok = False
            continue
        if value is not None:
            props[prop] = value
    return props if ok else None


def parse_load(manifest_path: Path, manifest: Manifest) -> ParsedLoad:
    """Read every file of a manifest into rows, collecting all problems (file and line)."""
    load = ParsedLoad(domain=manifest.domain)
    base = manifest_path.parent
    domain = manifest.domain
    node_lines: dict[str, str] = {}  # source id -> "file:line" of its definition
    entity_index: dict[str, dict[str, Any]] = {}

    def uid(source_id: str) -> str:
        return f"{domain}:{source_id}"

    for spec in manifest.nodes:
        label = spec.file
        delimiter = _delimiter(spec)
        lines = _lines(base / spec.file, label, load, delimiter)
        required: tuple[str, ...] = ("id",) if spec.type else ("id", "type")
        header = _header(lines, label, load, NODE_COLUMNS, spec.properties, required)
        if header is None:
            continue
        if spec.type and (not is_identifier(spec.type) or spec.type == ENTITY_LABEL):
            load.add_problem(label, None, f"type {spec.type!r} is not a valid label")
            continue
        for number, fields in lines:
            if len(fields) != len(header):
                load.add_problem(label, number,
                                 f"expected {len(header)} fields, found {len(fields)}")
                continue
            record = dict(zip(header, fields, strict=True))
            source_id = record["id"]
            if not source_id:
                load.add_problem(label, number, "missing id")
                continue
            if source_id in node_lines:
                load.add_problem(label, number,
                                 f"duplicate id {source_id!r} (first at {node_lines[source_id]})")
                continue
            node_lines[source_id] = f"{label}:{number}"
            etype = record.get("type") or spec.type or ""
            if not is_identifier(etype) or etype == ENTITY_LABEL:
                load.add_problem(label, number, f"type {etype!r} is not a valid label (letters, "
                                                "digits and '_', starting with a letter)")
                continue
            props = _typed_props(record, spec.properties, label, number, load)
            if props is None:
                continue
            props.update({"uid": uid(source_id), "name": record.get("name") or source_id,
                          "domain": domain, "source_id": source_id})
            aliases = _convert(record.get("aliases", ""), "list")
            if aliases:
                props["aliases"] = aliases
            if record.get("description"):
                props["description"] = record["description"]
            row = {"labels": [etype], "props": props}
            entity_index[source_id] = row
            load.entities.append(row)

    seen_rels: set[tuple[str, str, str]] = set()
    pending_ends = load.pending_ends

    def add_relation(label: str, number: int, head: str, rel_type: str, tail: str,
                     props: dict[str, Any], create_missing: bool) -> None:
        problem = relation_type_problem(rel_type)
        if problem is not None:
            load.add_problem(label, number, problem)
            return
        for end in (head, tail):
            if not end:
                load.add_problem(label, number, "missing source or target id")
                return
        for end in (head, tail):
            if end in entity_index:
                continue
            if create_missing:
                row = {"labels": [manifest.default_type],
                       "props": {"uid": uid(end), "name": end, "domain": domain,
                                 "source_id": end}}
                entity_index[end] = row
                node_lines[end] = f"{label}:{number}"
                load.entities.append(row)
            else:
                pending_ends.setdefault(uid(end), (label, number))
        key = (head, rel_type, tail)
        if key in seen_rels:
            return
        seen_rels.add(key)
        load.relations.setdefault(rel_type, []).append(
            {"s": uid(head), "t": uid(tail), "p": props, "line": f"{label}:{number}"})

    for rel_spec in manifest.relationships:
        label = rel_spec.file
        lines = _lines(base / rel_spec.file, label, load, _delimiter(rel_spec))
        required = ("source", "target") if rel_spec.type else REL_COLUMNS
        header = _header(lines, label, load, REL_COLUMNS, rel_spec.properties, required)
        if header is None:
            continue
        for number, fields in lines:
            if len(fields) != len(header):
                load.add_problem(label, number,
                                 f"expected {len(header)} fields, found {len(fields)}")
                continue
            record = dict(zip(header, fields, strict=True))
            props = _typed_props(record, rel_spec.properties, label, number, load)
            if props is None:
                continue
            add_relation(label, number, record["source"], record.get("type") or rel_spec.type
                         or "", record["target"], props, create_missing=False)

    for triples_spec in manifest.triples:
        label = triples_spec.file
        for number, fields in _lines(base / triples_spec.file, label, load,
                                     _delimiter(triples_spec)):
            if len(fields) != 3:
                load.add_problem(label, number, "expected 3 fields (head, relation, tail), "
                                                f"found {len(fields)}")
                continue
            head, relation, tail = fields
            if triples_spec.uppercase:
                relation = relation.upper()
            add_relation(label, number, head, relation, tail, {}, create_missing=True)

    for rel_type, declared in manifest.phrasings.items():
        load.phrasings[rel_type] = (list(declared.forward), list(declared.backward))
    load.type_words = {t: list(dict.fromkeys(ws)) for t, ws in manifest.type_words.items()}
    load.sensitive = sorted(set(manifest.sensitive))
    load.manifest_file = str(manifest_path)
    return load


def check_against_graph(driver: Driver, database: str, load: ParsedLoad) -> None:
    """Problems that need the live graph: entities that exist already, relationship ends that
    are neither in the load nor in the graph."""
    entity_uids = [row["props"]["uid"] for row in load.entities]
    pending = load.pending_ends
    with translate_errors():
        existing: set[str] = set()
        for start in range(0, len(entity_uids), 50_000):
            records, _, _ = driver.execute_query(
                EXISTING_UIDS_QUERY, {"uids": entity_uids[start:start + 50_000]},
                database_=database, routing_=RoutingControl.READ)
            existing.update(r["uid"] for r in records)
        found_ends: set[str] = set()
        pending_uids = list(pending)
        for start in range(0, len(pending_uids), 50_000):
            records, _, _ = driver.execute_query(
                EXISTING_UIDS_QUERY, {"uids": pending_uids[start:start + 50_000]},
                database_=database, routing_=RoutingControl.READ)
            found_ends.update(r["uid"] for r in records)
    for uid in sorted(existing)[:MAX_PROBLEMS]:
        load.add_problem("(graph)", None, f"entity {uid!r} exists already; a load only creates "
                                          "new entities (use another domain or a new id)")
    for uid, (label, number) in pending.items():
        if uid not in found_ends:
            load.add_problem(label, number, f"relationship end {uid.split(':', 1)[1]!r} is "
                                            "neither in the node files nor in the graph")
    for rel_type in sorted(set(load.phrasings) - set(load.relations)):
        with translate_errors():
            records, _, _ = driver.execute_query(
                DOMAIN_HAS_RELATION_TYPE_QUERY, {"domain": load.domain, "type": rel_type},
                database_=database, routing_=RoutingControl.READ)
        if not records or not records[0]["found"]:
            known = ", ".join(sorted(load.relations)[:20]) or "none"
            load.add_problem(load.manifest_file, None,
                             f"phrasings for {rel_type!r}: neither the load (its types: "
                             f"{known}) nor domain {load.domain!r} has {rel_type} "
                             "relationships")
    loaded_types = {label for row in load.entities for label in row["labels"]}
    for entity_type in sorted(set(load.type_words) - loaded_types):
        with translate_errors():
            records, _, _ = driver.execute_query(
                DOMAIN_HAS_ENTITY_TYPE_QUERY, {"domain": load.domain, "type": entity_type},
                database_=database, routing_=RoutingControl.READ)
        if not records or not records[0]["found"]:
            load.add_problem(load.manifest_file, None,
                             f"type_words for {entity_type!r}: neither the load nor domain "
                             f"{load.domain!r} has {entity_type} entities")


def prepare_load(driver: Driver | None, database: str, manifest_path: Path
                 ) -> tuple[ParsedLoad | None, list[Problem]]:
    """Read, parse and validate a manifest and its files; nothing is written."""
    manifest, problems = read_manifest(manifest_path)
    if manifest is None or problems:
        return None, problems
    load = parse_load(manifest_path, manifest)
    if driver is not None:  # even with problems: report every one, not just the first kind
        check_against_graph(driver, database, load)
    return load, load.problems
