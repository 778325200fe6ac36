"""Fast unit tests of the pieces that need no database."""

from __future__ import annotations

from pathlib import Path

import pytest

from api.errors import kgr_error_response
from api.exceptions import AuthenticationError, PermissionDeniedError
from api.security import KeyRing, StoredKey, hash_key
from core.errors import ConflictError, InvalidInputError, ModelNotReadyError, NotFoundError
from graph.artifacts import ArtifactStore
from graph.exceptions import DatabaseUnavailableError
from graph.schema import check_allowed, quote_identifier, quote_relation_type
from graph.server import PASSWORD_LENGTH, new_password
from graph.store import decode_cursor, encode_cursor, lucene_query


def test_lucene_query_escapes_syntax_and_adds_fuzzy_terms() -> None:
    query = lucene_query('marfan) OR name:"x" AND *')
    assert "marfan~1" in query and "name" in query
    # every token is wrapped, no raw field syntax or quotes survive
    assert ":" not in query and '"' not in query
    with pytest.raises(InvalidInputError):
        lucene_query("  !!! ")
    # up to four words must all match; with any_word (entity linking) one is enough
    assert " AND " in lucene_query("runs tesla") and " OR (" not in lucene_query("runs tesla")
    assert " AND " not in lucene_query("runs tesla", any_word=True)


def test_cursor_round_trip_and_garbage() -> None:
    assert decode_cursor(encode_cursor({"offset": 40})) == {"offset": 40}
    with pytest.raises(InvalidInputError):
        decode_cursor("not-base64!!")


def test_identifiers_are_checked_before_quoting() -> None:
    assert quote_identifier("HAS_PHENOTYPE") == "`HAS_PHENOTYPE`"
    for bad in ["X`) DETACH DELETE n //", "a b", "1abc", "", "x" * 65]:
        with pytest.raises(InvalidInputError):
            quote_identifier(bad)
    assert check_allowed(["A"], ["A", "B"], "label") == ["A"]


def test_relationship_types_take_any_storable_name_quoted_safely() -> None:
    assert quote_relation_type("/people/person/nationality") == "`/people/person/nationality`"
    assert quote_relation_type("__a__b") == "`__a__b`"
    assert quote_relation_type("x" * 70) == f"`{'x' * 70}`"
    # a backtick is doubled: the name cannot end the quoting
    assert quote_relation_type("X`) DETACH DELETE n //") == "`X``) DETACH DELETE n //`"
    # Cypher 5 reads \u0060 inside backticks as a backtick: no backslash at all
    for bad in ["a\\u0060b", "", " ", " a", "a\tb", "a\nb", "x" * 513]:
        with pytest.raises(InvalidInputError):
            quote_relation_type(bad)
    with pytest.raises(InvalidInputError) as info:
        check_allowed(["A", "Z"], ["A", "B"], "label")
    assert "'Z'" in info.value.message


def test_keyring_roles() -> None:
    ring = KeyRing([StoredKey("a", "admin", hash_key("adm")), StoredKey("r", "reader",
                                                                       hash_key("rd"))])
    assert ring.authenticate("adm").role == "admin"
    reader = ring.authenticate("rd")
    assert ring.authorize(reader, "reader") == reader
    with pytest.raises(PermissionDeniedError):
        ring.authorize(reader, "admin")
    with pytest.raises(AuthenticationError):
        ring.authenticate(None)
    with pytest.raises(AuthenticationError):
        ring.authenticate("adm ")


@pytest.mark.parametrize(("error", "status"), [
    (NotFoundError("x"), 404), (InvalidInputError("x"), 422), (ConflictError("x"), 409),
    (DatabaseUnavailableError("x"), 503), (AuthenticationError("x"), 401),
    (PermissionDeniedError("x"), 403), (ModelNotReadyError("x"), 409),
])
def test_every_error_class_has_one_status(error: Exception, status: int) -> None:
    response = kgr_error_response(error)  # type: ignore[arg-type]
    assert response.status_code == status
    if status == 503:
        assert response.headers["Retry-After"]


def test_artifact_versions_publish_and_activate(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path, "encoder")
    with pytest.raises(ModelNotReadyError):
        store.active_path("medical")
    staging = store.staging_dir("medical", "v1")
    (staging / "config.json").write_text("{}")
    store.publish("medical", "v1", staging)
    assert store.active_version("medical") == "v1"
    staging2 = store.staging_dir("medical", "v2")
    store.publish("medical", "v2", staging2, activate=False)
    assert store.versions("medical") == ["v1", "v2"] and store.active_version("medical") == "v1"
    store.activate("medical", "v2")
    assert store.active_path("medical").name == "v2"
    with pytest.raises(InvalidInputError):
        store.domain_dir("../etc")


def test_artifact_versions_delete_and_prune_spare_the_active_one(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path, "qa")
    for version in ("v1", "v2", "v3", "v4"):
        staging = store.staging_dir("finance", version)
        (staging / "config.json").write_text("{}")
        store.publish("finance", version, staging, activate=version == "v2")
    with pytest.raises(ConflictError, match="active"):
        store.delete("finance", "v2")
    with pytest.raises(NotFoundError):
        store.delete("finance", "v9")
    with pytest.raises(InvalidInputError):
        store.delete("finance", "../v1")
    with pytest.raises(InvalidInputError):
        store.prune("finance", 0)
    # the newest one and the active one stay, whatever their age
    assert store.prune("finance", 1) == ["v1", "v3"]
    assert store.versions("finance") == ["v2", "v4"] and store.active_version("finance") == "v2"
    assert not [p for p in store.domain_dir("finance").iterdir() if p.name.startswith(".")]
    assert store.prune("finance", 5) == []
    store.activate("finance", "v4")
    store.delete("finance", "v2")
    assert store.versions("finance") == ["v4"]


def test_generated_passwords_cannot_read_as_an_option() -> None:
    # CI once failed on a token_urlsafe password that began with "-": neo4j-admin took it
    # for an option and said the password was missing. 2000 draws of 32 characters from
    # the URL-safe alphabet would hold "-" or "_" with near certainty.
    passwords = {new_password() for _ in range(2000)}
    assert len(passwords) == 2000
    assert all(len(p) == PASSWORD_LENGTH and p.isascii() and p.isalnum() for p in passwords)
