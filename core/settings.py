"""The one configuration class of kgr, read from the environment (prefix ``KGR_``) and ``.env``.

``NEO4J_URI``, ``NEO4J_USER``, ``NEO4J_PASSWORD`` and ``NEO4J_DATABASE`` point kgr at an existing
server (a cluster, Aura, a container); without ``NEO4J_URI`` kgr starts and uses its own local
server under ``$KGR_HOME/neo4j``.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parents[1]


class Settings(BaseSettings):
    """Everything configurable in kgr; one instance per process (see ``get_settings``)."""

    model_config = SettingsConfigDict(env_prefix="KGR_", env_file=".env", extra="ignore")

    home: Path = Field(default=Path(".kgr"), description="State directory (outside git).")

    # Neo4j connection. Without neo4j_uri, the local server is used.
    neo4j_uri: str | None = Field(
        default=None, validation_alias=AliasChoices("NEO4J_URI", "KGR_NEO4J_URI")
    )
    neo4j_user: str = Field(
        default="neo4j",
        validation_alias=AliasChoices("NEO4J_USER", "NEO4J_USERNAME", "KGR_NEO4J_USER"),
    )
    neo4j_password: str | None = Field(
        default=None, validation_alias=AliasChoices("NEO4J_PASSWORD", "KGR_NEO4J_PASSWORD")
    )
    neo4j_database: str = Field(
        default="neo4j", validation_alias=AliasChoices("NEO4J_DATABASE", "KGR_NEO4J_DATABASE")
    )

    # Local server (only used without neo4j_uri).
    bolt_port: int = 7687
    # KGR_NEO4J_HTTP_PORT: also open the local server's HTTP connector on 127.0.0.1 (off by
    # default), for tools that speak Neo4j's HTTP API or discover the server over HTTP
    neo4j_http_port: int | None = Field(default=None, ge=1, le=65535)
    neo4j_heap: str = "2g"
    neo4j_pagecache: str = "1g"
    # Cypher plans the local server keeps (Neo4j's default: 1,000). Every relation-path shape
    # is its own query text (relationship types cannot be parameters), and a long run of
    # questions asks thousands: with 1,000, after one run of bench/qa_coordinated.py the cache
    # no longer kept new plans and coordinated finance 3-hop questions took 227 ms (p50) instead
    # of 55 until the server was restarted; with 20,000, 38 ms after the same run.
    neo4j_query_cache_entries: int = 20_000
    neo4j_start_timeout_s: float = 180.0

    # Driver behaviour: short timeouts so that a dead database gives 503 fast, not a hang.
    connect_timeout_s: float = 1.0
    retry_time_s: float = 0.5
    query_timeout_s: float = 30.0

    # How MiniLM runs: "onnx" (ONNX Runtime, exported once into ``home``/cache and checked
    # against PyTorch at load; 5.7 ms a question against 20.4 ms on a 2-core box) or "torch".
    # Without onnxruntime, or if the export or the check fails, PyTorch runs it.
    text_runtime: Literal["onnx", "torch"] = "onnx"
    # PyTorch's intra-op threads while the API serves (training jobs take every core while
    # they run): an ask's tensors are tiny, and more threads wake and spin for each op, taking
    # the cores from Neo4j and MiniLM (``fusion.serve.threads``).
    serve_torch_threads: int = Field(default=1, ge=1, le=256)
    # Background jobs (``api.jobs``, records in Neo4j): training jobs running at once over
    # every API process (beyond it: 429); a live job whose owner on another host has not
    # written a heartbeat for this long is marked interrupted; finished records kept this long.
    max_training_jobs: int = Field(default=1, ge=1, le=64)
    job_stale_minutes: float = Field(default=10.0, gt=0)
    job_retention_days: float = Field(default=7.0, gt=0)

    # Data and artifacts.
    data_dir: Path = Field(default=PROJECT_ROOT.parent / "shared" / "data")
    batch_size: int = 10_000
    # Concurrent write transactions of a relationship load (2 fills a 2-core server).
    load_writers: int = Field(default=2, ge=1, le=16)
    # An upload's body, and an uploaded archive's files once unpacked (checked on the archive's
    # directory or headers before any file is read: a zip bomb is refused unread).
    max_upload_bytes: int = 200 * 1024 * 1024
    max_upload_files: int = Field(default=1000, ge=1)  # entries of an uploaded archive
    migrate_lock_timeout_s: float = 30.0  # how long `kgr migrate` waits for another run's lock

    # API.
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    api_keys: str | None = Field(
        default=None, description="Comma-separated role:key pairs, e.g. 'admin:abc,reader:def'."
    )
    api_keys_file: Path | None = None
    # the audit trail ($KGR_HOME/audit/audit.jsonl): rotated at this size, this many kept
    audit_enabled: bool = True
    audit_max_bytes: int = Field(default=20 * 1024 * 1024, ge=1024)
    audit_backups: int = Field(default=10, ge=1, le=1000)
    # Per-key limits, kept by each API process (not shared between processes or hosts):
    # requests a second (a token bucket holding ``rate_limit_burst`` tokens, by default twice
    # the rate; 0 turns the limit off) and questions being answered at once by /v1/ask and
    # /v1/ask/batch (a batch counts its questions; 0: no limit). Over either: 429 with
    # Retry-After. Requests without a known key share one bucket per client address.
    rate_limit_rps: float = Field(default=100.0, ge=0)
    rate_limit_burst: int | None = Field(default=None, ge=1)
    max_concurrent_asks: int = Field(default=64, ge=0)

    @property
    def neo4j_home(self) -> Path:
        return self.home / "neo4j"

    @property
    def artifacts_dir(self) -> Path:
        return self.home / "artifacts"

    @property
    def keys_file(self) -> Path:
        return self.api_keys_file or (self.home / "api_keys.json")

    @property
    def uses_local_server(self) -> bool:
        return not self.neo4j_uri

    @property
    def resolved_uri(self) -> str:
        return self.neo4j_uri or f"neo4j://127.0.0.1:{self.bolt_port}"

    def resolved_password(self) -> str:
        """The password to connect with: configured, or the one generated for the local server."""
        if self.neo4j_password:
            return self.neo4j_password
        password_file = self.neo4j_home / "password"
        if password_file.exists():
            return password_file.read_text().strip()
        return ""


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
