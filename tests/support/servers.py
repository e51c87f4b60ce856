"""The server handles the `postgres`, `redis_server` and `openbao` fixtures yield
(tests/fixtures/servers.py), for tests' annotations and for servers a test starts itself."""

from __future__ import annotations

from devenv.openbao import VaultServer
from devenv.postgres import Postgres
from devenv.redis import Redis

__all__ = ["Postgres", "Redis", "VaultServer"]
