"""A small typed Python client of the kgr HTTP API (httpx).

    from api.client import KgrClient

    with KgrClient("http://127.0.0.1:8000", key) as kgr:
        answer = kgr.ask("Which genes are associated with Marfan syndrome?", domain="medical")
        print(answer.answers[0].name)

Responses come back as the API's own pydantic models. An error answer
(``{"error": {"code", "message"}}``) raises the kgr error class that the server mapped to that
code (``api/errors.py``): ``NotFoundError``, ``InvalidInputError``, ``AuthenticationError``...
A server that cannot be reached raises ``ServerUnreachableError``.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType
from typing import Any, Literal, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, TypeAdapter, ValidationError

from api.errors import STATUS_BY_ERROR
from api.exceptions import ServerUnreachableError, UnexpectedResponseError
from core.errors import InvalidInputError, KgrError
from fusion.serve.schemas import AskBatchResponse, AskResponse, Mode
from graph.models import Entity, EntityPage, GraphPath, Neighbor, Subgraph

M = TypeVar("M", bound=BaseModel)

# the server's error codes, read back into the classes it mapped them from
ERROR_BY_CODE: dict[str, type[KgrError]] = {
    code: cls for cls, _, code in STATUS_BY_ERROR
} | {"invalid_request": InvalidInputError}  # a request the API's own validation refused

DEFAULT_TIMEOUT_S = 120.0  # a first question loads the models on the server: seconds


class KgrClient:
    """The kgr API at ``url`` (e.g. ``http://127.0.0.1:8000``) with API key ``key``."""

    def __init__(self, url: str, key: str | None = None, *,
                 timeout_s: float = DEFAULT_TIMEOUT_S,
                 transport: httpx.BaseTransport | None = None) -> None:
        headers = {"X-API-Key": key} if key else {}
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout_s,
                                  transport=transport)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> KgrClient:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # --- the API ---------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        """``/readyz``: ready when the server's Neo4j answers (and the QA warm-up's state)."""
        return self._json("GET", "/readyz")

    def ask(self, question: str, *, domain: str | None = None, top_k: int = 10,
            max_hops: int = 3, mode: Mode | None = None, predicted_links: bool = False,
            count: bool | None = None) -> AskResponse:
        body = {"question": question, "domain": domain, "top_k": top_k, "max_hops": max_hops,
                "mode": mode, "predicted_links": predicted_links, "count": count}
        return self._model(AskResponse, "POST", "/v1/ask", json=body)

    def ask_batch(self, questions: Sequence[str], *, domain: str | None = None, top_k: int = 10,
                  max_hops: int = 3, mode: Mode | None = None, predicted_links: bool = False,
                  count: bool | None = None) -> AskBatchResponse:
        body = {"questions": list(questions), "domain": domain, "top_k": top_k,
                "max_hops": max_hops, "mode": mode, "predicted_links": predicted_links,
                "count": count}
        return self._model(AskBatchResponse, "POST", "/v1/ask/batch", json=body)

    def entity(self, uid: str) -> Entity:
        return self._model(Entity, "GET", f"/v1/entities/{_segment(uid)}")

    def search(self, text: str | None = None, *, types: Sequence[str] | None = None,
               domain: str | None = None, limit: int = 20, cursor: str | None = None,
               fuzzy: bool = True) -> EntityPage:
        params = _params(q=text, type=list(types or []), domain=domain, limit=limit,
                         cursor=cursor, fuzzy=fuzzy)
        return self._model(EntityPage, "GET", "/v1/entities", params=params)

    def neighbors(self, uid: str, *, relation_types: Sequence[str] | None = None,
                  direction: Literal["out", "in", "both"] = "both",
                  limit: int = 50) -> list[Neighbor]:
        params = _params(relation_type=list(relation_types or []), direction=direction,
                         limit=limit)
        return self._list(Neighbor, "GET", f"/v1/entities/{_segment(uid)}/neighbors",
                          params=params)

    def paths(self, source: str, target: str, *, max_hops: int = 3,
              relation_types: Sequence[str] | None = None, limit: int = 10) -> list[GraphPath]:
        params = _params(source=source, target=target, max_hops=max_hops,
                         relation_type=list(relation_types or []), limit=limit)
        return self._list(GraphPath, "GET", "/v1/paths", params=params)

    def subgraph(self, seeds: Sequence[str], *, hops: int = 2, max_nodes: int = 200,
                 max_edges: int = 1000,
                 relation_types: Sequence[str] | None = None) -> Subgraph:
        body = {"seeds": list(seeds), "hops": hops, "max_nodes": max_nodes,
                "max_edges": max_edges, "relation_types": relation_types}
        return self._model(Subgraph, "POST", "/v1/subgraph", json=body)

    # --- transport and errors --------------------------------------------------------------

    def _model(self, model: type[M], method: str, path: str, **kwargs: Any) -> M:
        data = self._json(method, path, **kwargs)
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            raise UnexpectedResponseError(f"{method} {path}: the answer is not a "
                                          f"{model.__name__}: {exc}", status=200) from exc

    def _list(self, model: type[M], method: str, path: str, **kwargs: Any) -> list[M]:
        data = self._json(method, path, **kwargs)
        try:
            return TypeAdapter(list[model]).validate_python(data)  # type: ignore[valid-type]
        except ValidationError as exc:
            raise UnexpectedResponseError(f"{method} {path}: the answer is not a list of "
                                          f"{model.__name__}: {exc}", status=200) from exc

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TimeoutException as exc:
            raise ServerUnreachableError(f"kgr at {self.url} did not answer {method} {path} "
                                         f"in time ({exc})") from exc
        except httpx.TransportError as exc:
            raise ServerUnreachableError(f"cannot reach kgr at {self.url}: {exc}") from exc
        if response.is_success:
            return response.json()
        raise error_from_response(response)


def error_from_response(response: httpx.Response) -> KgrError:
    """The kgr error for an error answer: the class of its ``error.code``."""
    try:
        error = response.json()["error"]
        code, message = str(error["code"]), str(error["message"])
    except (ValueError, KeyError, TypeError):
        return UnexpectedResponseError(
            f"HTTP {response.status_code} from {response.request.url}: "
            f"{response.text[:200] or response.reason_phrase}", status=response.status_code)
    cls = ERROR_BY_CODE.get(code)
    if cls is None:
        return UnexpectedResponseError(f"{code}: {message}", status=response.status_code,
                                       details=error.get("details"))
    return cls(message, details=error.get("details"))


def _segment(uid: str) -> str:
    # a uid may hold '/', '?' or '#' (source ids are free text): one escaped path segment
    return quote(uid, safe=":@!$&'()*+,;=-._~")


def _params(**values: Any) -> dict[str, Any]:
    """Query parameters without the unset ones (the server's defaults apply)."""
    return {k: v for k, v in values.items() if v is not None and v != []}
