"""``usecases/packages.py``: what an uploaded package is made of, before the runner sees it."""

from __future__ import annotations

import io
import tarfile
import zipfile
from collections.abc import Callable

import pytest

from core.errors import InvalidInputError, PayloadTooLargeError
from usecases.packages import PackageFile, manifest_domain, package_contents

MANIFEST = b"domain: shop\ntriples:\n  - file: triples.tsv\n"
TRIPLES = b"a\tsells\tb\n"


def zipped(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def tarred(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_files_sent_one_by_one_keep_their_names() -> None:
    contents = package_contents([PackageFile("manifest.yaml", MANIFEST),
                                 PackageFile("triples.tsv", TRIPLES)], 10_000, 10)
    assert contents == {"manifest.yaml": MANIFEST, "triples.tsv": TRIPLES}
    assert manifest_domain(contents) == "shop"


@pytest.mark.parametrize(("name", "pack"), [("p.zip", zipped), ("p.tar.gz", tarred)])
def test_an_archive_is_unpacked_to_base_names_without_hidden_files(
        name: str, pack: Callable[[dict[str, bytes]], bytes]) -> None:
    data = pack({"pkg/manifest.yaml": MANIFEST, "pkg/triples.tsv": TRIPLES,
                 "pkg/.DS_Store": b"x"})
    contents = package_contents([PackageFile(name, data)], 10_000, 10)
    assert contents == {"manifest.yaml": MANIFEST, "triples.tsv": TRIPLES}


@pytest.mark.parametrize(("files", "message"), [
    ([PackageFile("../manifest.yaml", MANIFEST)], "not a safe file name"),
    ([PackageFile("", MANIFEST)], "needs a file name"),
    ([PackageFile("a.tsv", TRIPLES), PackageFile("a.tsv", TRIPLES)], "sent twice"),
    ([PackageFile("manifest.yaml", MANIFEST), PackageFile("p.zip", zipped({"a": b""}))],
     "archive alone"),
    ([PackageFile("p.zip", b"not a zip")], "not a readable archive"),
    ([PackageFile("p.zip", zipped({"x/a.tsv": b"1", "y/a.tsv": b"2"}))], "duplicate file"),
])
def test_unusable_uploads_are_refused_with_the_reason(files: list[PackageFile],
                                                      message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        package_contents(files, 10_000, 10)


def test_an_archive_over_the_limits_is_refused_before_it_is_unpacked() -> None:
    many = zipped({f"f{i}.tsv": b"" for i in range(5)})
    with pytest.raises(PayloadTooLargeError, match="more than 4 entries"):
        package_contents([PackageFile("p.zip", many)], 10_000, 4)
    big = tarred({"big.tsv": b"x" * 5_000})
    with pytest.raises(PayloadTooLargeError, match="over the limit of 1,000 bytes"):
        package_contents([PackageFile("p.tar.gz", big)], 1_000, 10)


def test_a_manifest_without_a_readable_domain_names_none() -> None:
    assert manifest_domain({"triples.tsv": TRIPLES}) is None
    assert manifest_domain({"manifest.yaml": b"domain: [unclosed"}) is None
    assert manifest_domain({"manifest.json": b'{"domain": "shop"}'}) == "shop"
