"""API keys without a server: the keys file, revocation, reloading and the domain scope."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from api.exceptions import AuthenticationError
from api.security import (
    KeyRing,
    Principal,
    create_key,
    describe,
    file_keys,
    load_keys,
    revoke_key,
)
from core.errors import InvalidInputError, NotFoundError
from core.settings import Settings


@pytest.fixture
def cfg(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path, api_keys="reader:env-secret")


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_create_list_revoke_never_show_the_key(cfg: Settings) -> None:
    made = create_key(cfg, "reader", "alice", domains=["medical", "finance"], sensitive=True)
    assert made.key.startswith("kgr_") and made.key_id.startswith("key_")
    stored = next(k for k in file_keys(cfg) if k.id == made.key_id)
    assert stored.domains == ("finance", "medical") and stored.sensitive and not stored.revoked
    shown = [describe(k) for k in load_keys(cfg)]
    assert {s["id"] for s in shown} == {"env-0", made.key_id}
    text = json.dumps(shown)
    assert made.key not in text and stored.sha256 not in text and "env-secret" not in text
    assert made.key not in cfg.keys_file.read_text()  # only the hash is stored
    assert oct(cfg.keys_file.stat().st_mode & 0o777) == "0o600"

    revoked = revoke_key(cfg, made.key_id)
    assert revoked.revoked and revoked.revoked_at
    assert revoke_key(cfg, made.key_id).revoked_at == revoked.revoked_at  # idempotent
    with pytest.raises(NotFoundError):
        revoke_key(cfg, "key_unknown")
    with pytest.raises(InvalidInputError):
        revoke_key(cfg, "env-0")  # lives in KGR_API_KEYS, not in the file


def test_bad_scopes_are_refused(cfg: Settings) -> None:
    with pytest.raises(InvalidInputError):
        create_key(cfg, "reader", "x", domains=[" ", ""])
    with pytest.raises(InvalidInputError):
        create_key(cfg, "reader", "x", domains=["med ical"])
    with pytest.raises(InvalidInputError):
        create_key(cfg, "owner", "x")  # type: ignore[arg-type]
    assert not cfg.keys_file.exists()


def test_keyring_follows_the_file(cfg: Settings) -> None:
    clock = FakeClock()
    made = create_key(cfg, "admin", "ops")
    ring = KeyRing(load_keys(cfg), cfg, recheck_s=1.0, clock=clock)
    assert ring.authenticate(made.key).key_id == made.key_id
    assert ring.authenticate("env-secret").role == "reader"
    later = create_key(cfg, "reader", "late", domains=["medical"])
    revoke_key(cfg, made.key_id)
    clock.now = 0.5  # within the recheck interval: the file is not looked at yet
    assert ring.authenticate(made.key).role == "admin"
    clock.now = 1.5
    with pytest.raises(AuthenticationError, match="revoked"):
        ring.authenticate(made.key)
    scoped = ring.authenticate(later.key)
    assert scoped.domains == frozenset({"medical"}) and not scoped.sensitive

    cfg.keys_file.write_text("{not json")  # a broken file authenticates nobody from it
    clock.now = 3.0
    with pytest.raises(AuthenticationError):
        ring.authenticate(later.key)
    assert ring.authenticate("env-secret").role == "reader"


def test_principal_domain_checks() -> None:
    everything = Principal(name="a", role="reader")
    assert everything.allows("x") and everything.domain_list is None
    medical = Principal(name="m", role="reader", domains=frozenset({"medical"}))
    assert medical.check_domain("medical") == "medical"
    with pytest.raises(NotFoundError, match="unknown domain 'finance'"):
        medical.check_domain("finance")
    assert medical.visible(["finance", "medical"]) == ["medical"]


def test_up_reuses_its_own_valid_admin_key(cfg: Settings) -> None:
    from cli.serve import UP_KEY_PREFIX, up_admin_key

    assert up_admin_key(cfg) is None
    create_key(cfg, "admin", "someone-else")
    create_key(cfg, "admin", UP_KEY_PREFIX + "scoped", domains=["medical"])
    assert up_admin_key(cfg) is None  # only an all-domains admin key that `kgr up` made
    first = create_key(cfg, "admin", UP_KEY_PREFIX + "20260101T000000")
    found = up_admin_key(cfg)
    assert found is not None and found.id == first.key_id
    revoke_key(cfg, first.key_id)
    assert up_admin_key(cfg) is None  # revoked: the next `kgr up` makes a new one
