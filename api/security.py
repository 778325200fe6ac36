"""API keys: stored as SHA-256 hashes with a role, from a JSON file and/or ``KGR_API_KEYS``."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from api.exceptions import AuthenticationError, PermissionDeniedError
from graph.exceptions import InvalidInputError
from graph.settings import Settings

Role = Literal["reader", "admin"]
ROLES: tuple[Role, ...] = ("reader", "admin")
# A role may do everything the roles before it may.
ROLE_RANK = {"reader": 0, "admin": 1}
KEY_PREFIX = "kgr_"


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's name and role."""

    name: str
    role: Role


@dataclass(frozen=True)
class StoredKey:
    name: str
    role: Role
    sha256: str


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def load_keys(settings: Settings) -> list[StoredKey]:
    keys: list[StoredKey] = []
    if settings.api_keys:
        for index, pair in enumerate(p.strip() for p in settings.api_keys.split(",")):
            if not pair:
                continue
            role, _, key = pair.partition(":")
            if role not in ROLES or not key:
                raise InvalidInputError("KGR_API_KEYS must be comma-separated role:key pairs")
            keys.append(StoredKey(name=f"env-{index}", role=role, sha256=hash_key(key)))
    path = settings.keys_file
    if path.exists():
        data = json.loads(path.read_text())
        keys.extend(
            StoredKey(name=k["name"], role=k["role"], sha256=k["sha256"]) for k in data["keys"]
        )
    return keys


def create_key(settings: Settings, role: Role, name: str) -> str:
    """Generate a key, store only its hash in the keys file, and return the key (shown once)."""
    if role not in ROLES:
        raise InvalidInputError(f"role must be one of {', '.join(ROLES)}")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    path = settings.keys_file
    path.parent.mkdir(parents=True, exist_ok=True)
    data = json.loads(path.read_text()) if path.exists() else {"keys": []}
    data["keys"].append({
        "name": name, "role": role, "sha256": hash_key(key),
        "created_at": datetime.now(UTC).isoformat(),
    })
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    os.chmod(tmp, 0o600)
    tmp.replace(path)
    return key


class KeyRing:
    """Checks presented keys against the stored hashes (constant-time comparison)."""

    def __init__(self, keys: list[StoredKey]) -> None:
        self.keys = keys

    def authenticate(self, presented: str | None) -> Principal:
        if not presented:
            raise AuthenticationError("missing API key: send it in the X-API-Key header")
        digest = hash_key(presented)
        for stored in self.keys:
            if hmac.compare_digest(digest, stored.sha256):
                return Principal(name=stored.name, role=stored.role)
        raise AuthenticationError("invalid API key")

    @staticmethod
    def authorize(principal: Principal, needed: Role) -> Principal:
        if ROLE_RANK[principal.role] < ROLE_RANK[needed]:
            raise PermissionDeniedError(
                f"this needs the {needed!r} role; the key has {principal.role!r}"
            )
        return principal
