"""Building the Neo4j driver and translating driver errors into kgr errors, once."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from neo4j import Driver, GraphDatabase
from neo4j import exceptions as neo4j_errors

from core.errors import ConflictError, InvalidInputError, KgrError
from core.settings import Settings
from graph.exceptions import DatabaseUnavailableError


def make_driver(settings: Settings) -> Driver:
    """A routing driver for the configured server; connections are opened lazily.

    Short connection and retry timeouts make an unreachable database fail fast (the API turns
    that into 503 within 2 s) instead of hanging on the driver's default 30 s retry loop.
    """
    return GraphDatabase.driver(
        settings.resolved_uri,
        auth=(settings.neo4j_user, settings.resolved_password()),
        connection_timeout=settings.connect_timeout_s,
        connection_acquisition_timeout=settings.connect_timeout_s + 0.5,
        max_transaction_retry_time=settings.retry_time_s,
        liveness_check_timeout=5.0,
        max_connection_pool_size=50,
        user_agent="kgr/0.1",
        # Server notifications (e.g. "property key does not exist" on a fresh database) would
        # be logged as warnings on every query; kgr's queries are fixed constants, so mute them.
        notifications_min_severity="OFF",
    )


@contextmanager
def translate_errors() -> Iterator[None]:
    """Turn driver exceptions into the kgr error hierarchy."""
    try:
        yield
    except KgrError:
        raise
    except (neo4j_errors.ServiceUnavailable, neo4j_errors.SessionExpired) as exc:
        raise DatabaseUnavailableError(f"Neo4j is unreachable: {exc}") from exc
    except neo4j_errors.AuthError as exc:
        raise DatabaseUnavailableError(f"Neo4j rejected kgr's credentials: {exc}") from exc
    except neo4j_errors.ConstraintError as exc:
        raise ConflictError(f"constraint violated: {exc.message}") from exc
    except neo4j_errors.TransientError as exc:
        raise DatabaseUnavailableError(f"Neo4j is busy, try again: {exc.message}") from exc
    except neo4j_errors.DriverError as exc:
        # Timeouts while acquiring a connection and similar client-side failures.
        raise DatabaseUnavailableError(f"Neo4j did not answer: {exc}") from exc
    except neo4j_errors.ClientError as exc:
        if exc.code and ("Procedure" in exc.code or "Schema" in exc.code):
            raise InvalidInputError(f"Neo4j refused the request: {exc.message}") from exc
        raise
    except OSError as exc:
        raise DatabaseUnavailableError(f"Neo4j is unreachable: {exc}") from exc
