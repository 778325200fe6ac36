"""Parsing the built-in sources on small files: HPO (obo, hpoa, genes) and FinDKG (aggregation,
checksums, download when the data folder is absent); discovery and Cypher splitting."""

from __future__ import annotations

import functools
import http.server
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from core.settings import Settings
from domains import findkg
from domains.hpo import build_medical_graph, parse_obo
from graph.migrate.discovery import discover
from graph.migrate.exceptions import MigrationFailedError
from graph.migrate.runner import split_cypher


@pytest.fixture
def shared_findkg(shared_data: Callable[[str], Path]) -> Path:
    """The shared copy of FinDKG (KGR_DATA_DIR/findkg, as the migration reads it), else a skip."""
    return shared_data("findkg")


OBO = """\
format-version: 1.2

[Term]
id: HP:0000001
name: All

[Term]
id: HP:0000924
name: Abnormality of the skeletal system
is_a: HP:0000001 ! All

[Term]
id: HP:0001166
name: Arachnodactyly
alt_id: HP:0001505
def: "Abnormally long and slender fingers." [HPO:probinson]
synonym: "Long slender fingers" EXACT layperson []
synonym: "Spider fingers" EXACT []
synonym: "Old name" EXACT obsolete_synonym []
is_a: HP:0000924 ! Abnormality of the skeletal system

[Term]
id: HP:0040283
name: Occasional

[Term]
id: HP:0009999
name: obsolete thing
is_obsolete: true

[Typedef]
id: part_of
name: part of
"""
HPOA = """\
#description: HPO annotations
database_id\tdisease_name\tqualifier\thpo_id\treference\tevidence\tonset\tfrequency\tsex\tmodifier\taspect\tbiocuration
OMIM:154700\tMarfan syndrome\t\tHP:0001505\tPMID:1\tPCS\t\tHP:0040283\t\t\tP\tx
OMIM:154700\tMarfan syndrome\t\tHP:0001166\tPMID:2\tTAS\t\t3/5\t\t\tP\tx
OMIM:154700\tMarfan syndrome\tNOT\tHP:0000924\tPMID:3\tPCS\t\t\t\t\tP\tx
ORPHA:558\tMarfan syndrome (Orphanet)\t\tHP:0001166\tORPHA:558\tTAS\t\t\t\t\tP\tx
"""
G2P = """\
ncbi_gene_id\tgene_symbol\thpo_id\thpo_name\tfrequency\tdisease_id
2200\tFBN1\tHP:0001166\tArachnodactyly\t-\tOMIM:154700
2200\tFBN1\tHP:0001166\tArachnodactyly\t-\tORPHA:558
"""


@pytest.fixture
def hpo_dir(tmp_path: Path) -> Path:
    (tmp_path / "hp.obo").write_text(OBO)
    (tmp_path / "phenotype.hpoa").write_text(HPOA)
    (tmp_path / "genes_to_phenotype.txt").write_text(G2P)
    return tmp_path


def test_obo_terms(hpo_dir: Path) -> None:
    terms = parse_obo(hpo_dir / "hp.obo")
    assert set(terms) == {"HP:0000001", "HP:0000924", "HP:0001166", "HP:0040283", "HP:0009999"}
    arachno = terms["HP:0001166"]
    assert arachno.synonyms == ["Long slender fingers", "Spider fingers"]
    assert arachno.definition == "Abnormally long and slender fingers."
    assert arachno.parents == ["HP:0000924"] and arachno.alt_ids == ["HP:0001505"]
    assert terms["HP:0009999"].obsolete


def test_medical_graph(hpo_dir: Path) -> None:
    graph = build_medical_graph(hpo_dir)
    by_uid = {e["props"]["uid"]: e for e in graph.entities}
    assert "medical:HP:0009999" not in by_uid  # obsolete
    arachno = by_uid["medical:HP:0001166"]["props"]
    assert arachno["aliases"] == ["Long slender fingers", "Spider fingers"]
    assert by_uid["medical:OMIM:154700"]["labels"] == ["Disease"]
    assert by_uid["medical:NCBIGene:2200"]["props"]["name"] == "FBN1"
    # The alt id maps onto the primary term; the two rows merge; frequency ids become names;
    # the NOT annotation is left out.
    has_phenotype = {(r["s"], r["t"]): r["p"] for r in graph.relations["HAS_PHENOTYPE"]}
    assert has_phenotype == {
        ("medical:OMIM:154700", "medical:HP:0001166"):
            {"frequency": "Occasional", "evidence": "PCS", "aspect": "phenotypic abnormality"},
        ("medical:ORPHA:558", "medical:HP:0001166"):
            {"evidence": "TAS", "aspect": "phenotypic abnormality"},
    }
    assert graph.skipped["NOT annotations"] == 1
    assert {(r["s"], r["t"]) for r in graph.relations["IS_A"]} == {
        ("medical:HP:0000924", "medical:HP:0000001"), ("medical:HP:0001166", "medical:HP:0000924")}
    assert [(r["s"], r["t"]) for r in graph.relations["ASSOCIATED_PHENOTYPE"]] == [
        ("medical:NCBIGene:2200", "medical:HP:0001166")]
    assert {r["t"] for r in graph.relations["ASSOCIATED_WITH"]} == {
        "medical:OMIM:154700", "medical:ORPHA:558"}


def test_medical_graph_reports_file_and_line(hpo_dir: Path) -> None:
    (hpo_dir / "phenotype.hpoa").write_text(HPOA + "OMIM:1\tbroken row\n")
    with pytest.raises(MigrationFailedError, match=r"phenotype\.hpoa:7: expected 12 columns"):
        build_medical_graph(hpo_dir)


def write_findkg(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "entity2id.txt").write_text(
        "Elon Musk\t0\tPERSON\t0\nTesla Inc.\t1\tCOMP\t2\nSEC\t2\tORG/REG\t7\n")
    (folder / "relation2id.txt").write_text("Control\t0\nNegative_Impact_On\t1\n")
    (folder / "time2id.txt").write_text("TimeID,DATE_WK\n0,2018-01-07\n1,2018-01-14\n")
    (folder / "train.txt").write_text("0\t0\t1\t0\t0\n0\t0\t1\t1\t0\n2\t1\t1\t1\t0\n")
    (folder / "valid.txt").write_text("0\t0\t1\t3\t0\n")
    (folder / "test.txt").write_text("")


def test_finance_graph_aggregates_weeks(tmp_path: Path) -> None:
    write_findkg(tmp_path)
    graph = findkg.build_finance_graph(tmp_path)
    labels = {e["props"]["name"]: e["labels"] for e in graph.entities}
    assert labels == {"Elon Musk": ["Person"], "Tesla Inc.": ["Company"], "SEC": ["Regulator"]}
    [control] = graph.relations["CONTROL"]
    assert (control["s"], control["t"]) == ("finance:0", "finance:1")
    # Week 3 is past time2id's end: its date is computed from week 0.
    assert control["p"] == {"first_week": 0, "last_week": 3, "count": 3,
                            "first_seen": "2018-01-07", "last_seen": "2018-01-28"}
    assert graph.observations == 4 and graph.relation_count == 2


def test_checksums_are_verified(tmp_path: Path, shared_findkg: Path) -> None:
    write_findkg(tmp_path)
    with pytest.raises(MigrationFailedError, match="entity2id.txt: sha256"):
        findkg.verify(tmp_path, ["entity2id.txt"])
    findkg.verify(shared_findkg)  # the shared copy matches the committed SHA256SUMS


@pytest.fixture
def findkg_server(tmp_path: Path, shared_findkg: Path) -> Iterator[str]:
    """A local HTTP server laid out like the FinDKG repository (files from the shared copy)."""
    root = tmp_path / "repo"
    for name, source in findkg.SOURCE_PATHS.items():
        target = root / source
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(shared_findkg / name, target)

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_download_when_data_folder_is_absent(tmp_path: Path, findkg_server: str,
                                              shared_findkg: Path) -> None:
    settings = Settings(home=tmp_path / "home", data_dir=tmp_path / "nowhere")
    folder = findkg.locate(settings, base_url=findkg_server)
    assert folder == tmp_path / "home" / "data" / "findkg"
    assert (folder / "train.txt").read_bytes() == (shared_findkg / "train.txt").read_bytes()
    # A tampered file on the server is refused.
    (folder / "test.txt").unlink()
    served = tmp_path / "repo" / findkg.SOURCE_PATHS["test.txt"]
    served.write_text("tampered\n")
    with pytest.raises(MigrationFailedError, match="does not match SHA256SUMS"):
        findkg.locate(settings, base_url=findkg_server)
    assert not (folder / "test.txt").exists()


def test_discovery_and_cypher_split(tmp_path: Path) -> None:
    (tmp_path / "V1__schema.cypher").write_text("CREATE INDEX a IF NOT EXISTS FOR (n:X) ON (n.a);")
    (tmp_path / "V2__load.yaml").write_text("domain: x\n")
    (tmp_path / "V2__load_nodes.tsv").write_text("id\n")  # data file: skipped
    (tmp_path / "V3_bad-name.py").write_text("")
    (tmp_path / "V2__again.py").write_text("")
    (tmp_path / "V4__pkg").mkdir()
    (tmp_path / "V4__pkg" / "manifest.yaml").write_text("domain: y\n")
    (tmp_path / "notes.md").write_text("not a migration")
    migrations, problems = discover([tmp_path])
    assert [(m.version, m.kind, m.script) for m in migrations] == [
        (1, "cypher", "V1__schema.cypher"), (2, "python", "V2__again.py"),
        (4, "manifest", "V4__pkg")]
    messages = sorted(p.message.split(" ")[0] + " " + Path(p.file).name for p in problems)
    assert messages == ["bad V3_bad-name.py", "duplicate V2__load.yaml"]
    assert split_cypher("// c\nCREATE (a);\nMATCH (n)\nRETURN n;\n\nRETURN 1") == [
        "CREATE (a)", "MATCH (n)\nRETURN n", "RETURN 1"]
