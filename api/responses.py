"""Hot read routes: one thread hop and one serialisation per request.

A plain ``def`` route costs FastAPI two thread-pool hops (the route, then the validation of its
return value against ``response_model``, which FastAPI also runs in the pool for a sync route)
and validates models that were just built from the graph. The entity routes are ``async def``
instead: the blocking store call runs in the pool once (``in_thread``), and the model is
written to JSON bytes once by pydantic (``json_response``); ``response_model`` stays on the
route for the OpenAPI schema only. (FastAPI's ``ORJSONResponse`` is deprecated: pydantic's
own ``model_dump_json`` is as fast and needs no extra dependency.)

``served_from`` makes a response model from a record's dataclass, so that a route does not
list the record's fields a second time.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any, ParamSpec, TypeVar

from fastapi import Response
from pydantic import BaseModel, ConfigDict, TypeAdapter, create_model
from starlette.concurrency import run_in_threadpool

P = ParamSpec("P")
T = TypeVar("T")
JSON = "application/json"


async def in_thread(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run a blocking (driver) call in the thread pool, so the event loop stays free."""
    return await run_in_threadpool(fn, *args, **kwargs)


@lru_cache(maxsize=32)
def _list_adapter(item: type[BaseModel]) -> TypeAdapter[list[Any]]:
    return TypeAdapter(list[item])  # type: ignore[valid-type]


def json_response(value: BaseModel | Sequence[BaseModel], item: type[BaseModel] | None = None,
                  ) -> Response:
    """``value`` as JSON, serialised once and not validated again (it was built as a model);
    a list needs its ``item`` model."""
    if isinstance(value, BaseModel):
        body = value.model_dump_json().encode()
    else:
        if item is None:
            raise TypeError("json_response of a list needs its item model")
        body = _list_adapter(item).dump_json(list(value))
    return Response(content=body, media_type=JSON)


def served_from(record: type, name: str, doc: str, leave_out: tuple[str, ...] = (),
                **fields: Any) -> type[BaseModel]:
    """A response model with the fields of the dataclass ``record`` (but ``leave_out``, what
    a client has no use for) and ``fields`` (added, or replacing one), read from a record's
    attributes: the API says what the record says, without a second list of its fields."""
    hints = typing.get_type_hints(record)
    own: dict[str, Any] = {
        f.name: (hints[f.name], ... if f.default is dataclasses.MISSING else f.default)
        for f in dataclasses.fields(record) if f.name not in leave_out}
    return create_model(name, __config__=ConfigDict(from_attributes=True), __doc__=doc,
                        **{**own, **fields})
