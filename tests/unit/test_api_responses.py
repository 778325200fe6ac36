"""api.responses: models written once, as FastAPI would have written them."""

from __future__ import annotations

import json

import pytest

from api.responses import json_response
from graph.models import Entity, Neighbor, Relation


def _entity(uid: str) -> Entity:
    return Entity(uid=uid, name=uid.upper(), domain="d", types=["Gene"], aliases=["x"],
                  properties={"n": 1, "tags": ["a", "b"]})


def test_a_model_is_its_json() -> None:
    entity = _entity("d:1")
    response = json_response(entity)
    assert response.media_type == "application/json"
    assert json.loads(bytes(response.body)) == entity.model_dump(mode="json")


def test_a_list_is_written_with_its_item_model() -> None:
    neighbors = [Neighbor(direction="out", relation=Relation(type="LINKS", source="d:1",
                                                            target=f"d:{i}"),
                          entity=_entity(f"d:{i}")) for i in (2, 3)]
    body = json.loads(bytes(json_response(neighbors, Neighbor).body))
    assert body == [n.model_dump(mode="json") for n in neighbors]
    assert json.loads(bytes(json_response([], Neighbor).body)) == []


def test_a_list_without_its_item_model_is_refused() -> None:
    with pytest.raises(TypeError):
        json_response([_entity("d:1")])
