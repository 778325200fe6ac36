"""API keys: SHA-256 hashes with a role, a domain scope and a sensitive-properties scope.

Keys come from ``KGR_API_KEYS`` (unscoped, cannot be revoked) and the keys file
(``$KGR_HOME/api_keys.json``), which ``kgr keys create|revoke`` rewrite atomically. A running
API re-reads the file when it changes (``KeyRing``, checked at most once a second), so a
revoked key is refused by every process within about a second, without a restart.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from api.exceptions import AuthenticationError, PermissionDeniedError
from core.errors import InvalidInputError, NotFoundError
from core.settings import Settings

log = logging.getLogger("kgr.api")

Role = Literal["reader", "admin"]
ROLES: tuple[Role, ...] = ("reader", "admin")
# A role may do everything the roles before it may.
ROLE_RANK = {"reader": 0, "admin": 1}
KEY_PREFIX = "kgr_"
KEY_ID_PREFIX = "key_"
# How often a running API looks at the keys file's mtime (seconds): a revoke takes effect
# within this time in every process.
KEYS_RECHECK_S = 1.0


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's id, name and role, the domains it may see (None: all) and
    whether it may see the properties a domain declares sensitive."""

    name: str
    role: Role
    key_id: str = ""
    domains: frozenset[str] | None = None
    sensitive: bool = False

    def allows(self, domain: str) -> bool:
        return self.domains is None or domain in self.domains

    def check_domain(self, domain: str) -> str:
        """The domain, if the key may see it; otherwise the same 404 as an unknown domain (a
        key must not learn which domains exist beyond its own)."""
        if not self.allows(domain):
            raise NotFoundError(f"unknown domain {domain!r}")
        return domain

    def check_may_load(self, domain: str) -> None:
        """An admin key limited to some domains may load (migrate) only those."""
        if not self.allows(domain):
            assert self.domains is not None
            raise PermissionDeniedError(f"this key may not load domain {domain!r}; it is "
                                        f"limited to {', '.join(sorted(self.domains))}")

    def visible(self, domains: Iterable[str]) -> list[str]:
        """The given domains that the key may see, in their order."""
        return [d for d in domains if self.allows(d)]

    @property
    def domain_list(self) -> list[str] | None:
        """The allow-list as a query parameter (None: every domain)."""
        return sorted(self.domains) if self.domains is not None else None


class KeyRecord(BaseModel):
    """One key of the keys file (only the hash of the key is stored)."""

    model_config = ConfigDict(extra="ignore")

    id: str | None = None
    name: str
    role: Role
    sha256: str = Field(min_length=64, max_length=64)
    domains: list[str] | None = None
    sensitive: bool = False
    created_at: str | None = None
    revoked_at: str | None = None


@dataclass(frozen=True)
class StoredKey:
    name: str
    role: Role
    sha256: str
    key_id: str = ""
    domains: tuple[str, ...] | None = None
    sensitive: bool = False
    created_at: str | None = None
    revoked_at: str | None = None

    @property
    def id(self) -> str:
        # keys written before ids existed are named by a prefix of their hash
        return self.key_id or self.sha256[:12]

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    def principal(self) -> Principal:
        return Principal(name=self.name, role=self.role, key_id=self.id,
                         domains=frozenset(self.domains) if self.domains is not None else None,
                         sensitive=self.sensitive)


@dataclass(frozen=True)
class CreatedKey:
    """A new key: its id (for list/revoke/audit) and the key itself, shown only once."""

    key_id: str
    key: str


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def env_keys(settings: Settings) -> list[StoredKey]:
    keys: list[StoredKey] = []
    if settings.api_keys:
        for index, pair in enumerate(p.strip() for p in settings.api_keys.split(",")):
            if not pair:
                continue
            role, _, key = pair.partition(":")
            if role not in ROLES or not key:
                raise InvalidInputError("KGR_API_KEYS must be comma-separated role:key pairs")
            keys.append(StoredKey(name=f"env-{index}", role=role, sha256=hash_key(key),
                                  key_id=f"env-{index}"))
    return keys


def _read_file(path: Path) -> list[KeyRecord]:
    if not path.exists():
        return []
    try:
        data = json.loads(path.read_text())
        return [KeyRecord.model_validate(k) for k in data["keys"]]
    except (ValueError, KeyError, TypeError, ValidationError) as exc:
        raise InvalidInputError(f"the keys file {path} is not valid: {exc}") from exc


def _stored(record: KeyRecord) -> StoredKey:
    return StoredKey(name=record.name, role=record.role, sha256=record.sha256,
                     key_id=record.id or "", sensitive=record.sensitive,
                     domains=tuple(record.domains) if record.domains is not None else None,
                     created_at=record.created_at, revoked_at=record.revoked_at)


def file_keys(settings: Settings) -> list[StoredKey]:
    """Every key of the keys file, revoked ones included."""
    return [_stored(r) for r in _read_file(settings.keys_file)]


def load_keys(settings: Settings) -> list[StoredKey]:
    """Every configured key (environment and file), revoked ones included."""
    return env_keys(settings) + file_keys(settings)


@contextmanager
def _locked_file(settings: Settings) -> Iterator[list[KeyRecord]]:
    """The keys file's records under an exclusive lock; written back (atomically) on exit, so
    that two ``kgr keys`` runs do not lose each other's change."""
    path = settings.keys_file
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        records = _read_file(path)
        yield records
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(
            {"keys": [r.model_dump(exclude_none=True) for r in records]}, indent=2))
        os.chmod(tmp, 0o600)
        tmp.replace(path)


def check_domain_names(domains: Iterable[str]) -> list[str]:
    cleaned = sorted({d.strip() for d in domains if d.strip()})
    if not cleaned:
        raise InvalidInputError("give at least one domain, or none for every domain")
    for domain in cleaned:
        if len(domain) > 64 or not all(c.isalnum() or c in "_-" for c in domain):
            raise InvalidInputError(f"domain {domain!r}: use letters, digits, '_' and '-'")
    return cleaned


def create_key(settings: Settings, role: Role, name: str, *,
               domains: Iterable[str] | None = None, sensitive: bool = False) -> CreatedKey:
    """Generate a key, store only its hash in the keys file, and return it (shown once).
    ``domains``: the only domains the key may see (None: all); ``sensitive``: it may see the
    properties domains declare sensitive."""
    if role not in ROLES:
        raise InvalidInputError(f"role must be one of {', '.join(ROLES)}")
    scope = check_domain_names(domains) if domains is not None else None
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    key_id = KEY_ID_PREFIX + secrets.token_hex(6)
    with _locked_file(settings) as records:
        records.append(KeyRecord(id=key_id, name=name, role=role, sha256=hash_key(key),
                                 domains=scope, sensitive=sensitive,
                                 created_at=datetime.now(UTC).isoformat(timespec="seconds")))
    return CreatedKey(key_id=key_id, key=key)


def revoke_key(settings: Settings, key_id: str) -> StoredKey:
    """Mark a key of the keys file revoked (kept, so that the audit trail still names it);
    revoking a revoked key changes nothing."""
    if any(k.id == key_id for k in env_keys(settings)):
        raise InvalidInputError(f"{key_id} comes from KGR_API_KEYS: remove it there")
    with _locked_file(settings) as records:
        for i, record in enumerate(records):
            if _stored(record).id == key_id:
                if record.revoked_at is None:
                    records[i] = record.model_copy(update={
                        "revoked_at": datetime.now(UTC).isoformat(timespec="seconds")})
                return _stored(records[i])
    raise NotFoundError(f"no API key with id {key_id!r} (see `kgr keys list`)")


class KeyRing:
    """Checks presented keys against the stored hashes (constant-time comparison). With
    settings, it follows the keys file: re-read when its mtime, size or inode change, looked
    at no more than once per ``recheck_s``."""

    def __init__(self, keys: list[StoredKey], settings: Settings | None = None,
                 recheck_s: float = KEYS_RECHECK_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.keys = keys
        self._settings = settings
        self._recheck_s = recheck_s
        self._clock = clock
        self._lock = threading.Lock()
        self._checked_at = clock()
        self._stamp = self._file_stamp()

    @classmethod
    def from_settings(cls, settings: Settings, recheck_s: float = KEYS_RECHECK_S) -> KeyRing:
        return cls(load_keys(settings), settings, recheck_s)

    def _file_stamp(self) -> tuple[int, int, int] | None:
        if self._settings is None:
            return None
        try:
            st = self._settings.keys_file.stat()
        except FileNotFoundError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def refresh(self, now: bool = False) -> bool:
        """Re-read the keys file if it changed since the last look (``now``: whenever it was
        last looked at); True if it did. A file that no longer parses authenticates nobody
        (fail closed) until it is fixed: the environment's keys still work."""
        if self._settings is None:
            return False
        if not now and self._clock() - self._checked_at < self._recheck_s:
            return False
        with self._lock:
            if not now and self._clock() - self._checked_at < self._recheck_s:
                return False
            self._checked_at = self._clock()
            stamp = self._file_stamp()
            if stamp == self._stamp:
                return False
            try:
                keys = load_keys(self._settings)
            except InvalidInputError as exc:
                log.error("API keys file unreadable, only KGR_API_KEYS keys work: %s", exc)
                keys = env_keys(self._settings)
            self.keys, self._stamp = keys, stamp
            return True

    def authenticate(self, presented: str | None) -> Principal:
        if not presented:
            raise AuthenticationError("missing API key: send it in the X-API-Key header")
        self.refresh()
        digest = hash_key(presented)
        stored = self._find(digest)
        # a key created a moment ago works at once: an unknown key costs one stat() of the file
        if stored is None and self.refresh(now=True):
            stored = self._find(digest)
        if stored is None:
            raise AuthenticationError("invalid API key")
        if stored.revoked:
            raise AuthenticationError("this API key was revoked")
        return stored.principal()

    def _find(self, digest: str) -> StoredKey | None:
        found = None
        for stored in self.keys:  # every key compared, in constant time each
            if hmac.compare_digest(digest, stored.sha256):
                found = stored
        return found

    @staticmethod
    def authorize(principal: Principal, needed: Role) -> Principal:
        if ROLE_RANK[principal.role] < ROLE_RANK[needed]:
            raise PermissionDeniedError(
                f"this needs the {needed!r} role; the key has {principal.role!r}"
            )
        return principal


def describe(key: StoredKey) -> dict[str, Any]:
    """What ``kgr keys list`` shows of a key: never the key or its hash."""
    return {"id": key.id, "name": key.name, "role": key.role,
            "domains": ",".join(key.domains) if key.domains is not None else "all",
            "sensitive": key.sensitive, "created": key.created_at or "",
            "revoked": key.revoked_at or ""}
