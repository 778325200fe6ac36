"""The finance domain from FinDKG (the Financial Dynamic Knowledge Graph).

The files are read from ``Settings.data_dir / "findkg"`` (``KGR_DATA_DIR``); when that folder
is absent they are downloaded from the public FinDKG GitHub repository (a fixed commit) into
``$KGR_HOME/data/findkg``. Either way every file read is checked against ``SHA256SUMS``
(a copy is committed as ``migrations/findkg.SHA256SUMS``; checksums are not data).

All of train/valid/test go into the graph, one relationship per (subject, relation, object)
with ``first_week``/``last_week`` (week ids), ``first_seen``/``last_seen`` (the weeks' start
dates, ISO ``YYYY-MM-DD``) and ``count`` (how many weekly observations).
"""

from __future__ import annotations

import hashlib
import urllib.request
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from core.settings import PROJECT_ROOT, Settings
from graph.migrate.exceptions import MigrationFailedError
from graph.migrate.loader import entity

DOMAIN = "finance"
COMMIT = "bd75205b7ca15681fb071b2f7ac3d1cdf2044118"
RAW_BASE = f"https://raw.githubusercontent.com/xiaohui-victor-li/FinDKG/{COMMIT}/FinDKG_dataset"
# file -> path in the repository (time2id.txt comes from FinDKG-full; same week origin)
SOURCE_PATHS = {
    "entity2id.txt": "FinDKG/entity2id.txt",
    "relation2id.txt": "FinDKG/relation2id.txt",
    "train.txt": "FinDKG/train.txt",
    "valid.txt": "FinDKG/valid.txt",
    "test.txt": "FinDKG/test.txt",
    "stat.txt": "FinDKG/stat.txt",
    "time2id.txt": "FinDKG-full/time2id.txt",
}
CHECKSUMS_FILE = PROJECT_ROOT / "migrations" / "findkg.SHA256SUMS"
SPLITS = ("train.txt", "valid.txt", "test.txt")
WEEK_ZERO = date(2018, 1, 7)
TYPE_LABELS = {
    "PERSON": "Person", "COMP": "Company", "ORG": "Organization", "ORG/GOV": "Government",
    "ORG/REG": "Regulator", "GPE": "Place", "SECTOR": "Sector", "EVENT": "Event",
    "CONCEPT": "Concept", "PRODUCT": "Product", "FIN_INSTRUMENT": "FinancialInstrument",
    "ECON_INDICATOR": "EconomicIndicator",
}


@dataclass
class FinanceGraph:
    entities: list[dict[str, Any]]
    relations: dict[str, list[dict[str, Any]]]
    observations: int

    @property
    def relation_count(self) -> int:
        return sum(len(rows) for rows in self.relations.values())


def expected_checksums(path: Path = CHECKSUMS_FILE) -> dict[str, str]:
    sums: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if line.strip():
            digest, name = line.split(maxsplit=1)
            sums[name.strip().lstrip("*")] = digest
    return sums


def verify(folder: Path, names: list[str] | None = None,
           checksums: dict[str, str] | None = None) -> None:
    """Check the files against SHA256SUMS; raises naming every file that does not match."""
    checksums = checksums or expected_checksums()
    bad = []
    for name in names or list(SOURCE_PATHS):
        path = folder / name
        if not path.is_file():
            bad.append(f"{name}: missing")
            continue
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest != checksums.get(name):
            bad.append(f"{name}: sha256 {digest[:12]}... does not match SHA256SUMS")
    if bad:
        raise MigrationFailedError(f"FinDKG files in {folder} fail the checksum check: "
                                   + "; ".join(bad))


def download(target: Path, base_url: str = RAW_BASE,
             checksums: dict[str, str] | None = None) -> Path:
    """Download the FinDKG files into ``target`` (each verified, then renamed into place)."""
    target.mkdir(parents=True, exist_ok=True)
    checksums = checksums or expected_checksums()
    for name, source in SOURCE_PATHS.items():
        final = target / name
        if final.is_file() and hashlib.sha256(final.read_bytes()).hexdigest() == checksums[name]:
            continue
        url = f"{base_url}/{source}"
        if not url.startswith(("https://", "http://127.0.0.1:", "http://localhost:")):
            raise MigrationFailedError(f"refusing to download FinDKG from {url!r}")
        try:
            with urllib.request.urlopen(url, timeout=60) as response:  # noqa: S310
                data = response.read()
        except OSError as exc:
            raise MigrationFailedError(
                f"FinDKG is not in the data folder and downloading {url} failed: {exc}; set "
                "KGR_DATA_DIR to a folder holding findkg/") from exc
        digest = hashlib.sha256(data).hexdigest()
        if digest != checksums[name]:
            raise MigrationFailedError(f"downloaded {url} does not match SHA256SUMS")
        partial = final.with_suffix(".partial")
        partial.write_bytes(data)
        partial.replace(final)
    return target


def locate(settings: Settings, base_url: str = RAW_BASE) -> Path:
    """The verified FinDKG folder: the configured data dir, else a downloaded copy."""
    folder = Path(settings.data_dir) / "findkg"
    if not folder.is_dir():
        folder = download(settings.home / "data" / "findkg", base_url)
    verify(folder)
    return folder


def _table(path: Path, columns: int, sep: str = "\t") -> list[tuple[int, list[str]]]:
    rows = []
    with path.open(encoding="utf-8") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            fields = raw.rstrip("\n").split(sep)
            if len(fields) < columns:
                raise MigrationFailedError(f"{path}:{number}: expected {columns} columns, "
                                           f"found {len(fields)}")
            rows.append((number, fields))
    return rows


def build_finance_graph(folder: Path, domain: str = DOMAIN) -> FinanceGraph:
    """Parse FinDKG into entity rows and aggregated relationship rows."""
    entities: list[dict[str, Any]] = []
    known: set[str] = set()
    for number, (name, entity_id, etype, *_) in _table(folder / "entity2id.txt", 3):
        label = TYPE_LABELS.get(etype)
        if label is None:
            raise MigrationFailedError(f"{folder / 'entity2id.txt'}:{number}: unknown entity "
                                       f"type {etype!r}")
        entities.append(entity(f"{domain}:{entity_id}", name, domain, [label],
                               source_id=entity_id, findkg_type=etype))
        known.add(entity_id)
    relation_names = {rid: name.upper() for _, (name, rid, *_) in
                      _table(folder / "relation2id.txt", 2)}
    weeks = {int(wid): day for _, (wid, day) in _table(folder / "time2id.txt", 2, sep=",")[1:]}

    def week_date(week: int) -> str:
        return weeks.get(week) or (WEEK_ZERO + timedelta(weeks=week)).isoformat()

    facts: dict[tuple[str, str, str], list[int]] = {}
    observations = 0
    for split in SPLITS:
        path = folder / split
        for number, (head, rel, tail, week, *_) in _table(path, 4):
            if head not in known or tail not in known or rel not in relation_names:
                raise MigrationFailedError(f"{path}:{number}: unknown entity or relation id")
            observations += 1
            stats = facts.get((head, rel, tail))
            w = int(week)
            if stats is None:
                facts[(head, rel, tail)] = [w, w, 1]
            else:
                stats[0] = min(stats[0], w)
                stats[1] = max(stats[1], w)
                stats[2] += 1
    relations: dict[str, list[dict[str, Any]]] = {}
    for (head, rel, tail), (first, last, count) in facts.items():
        relations.setdefault(relation_names[rel], []).append({
            "s": f"{domain}:{head}", "t": f"{domain}:{tail}",
            "p": {"first_week": first, "last_week": last, "count": count,
                  "first_seen": week_date(first), "last_seen": week_date(last)},
        })
    return FinanceGraph(entities, relations, observations)
