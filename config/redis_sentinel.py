"""Redis behind Redis Sentinel for Django's cache, with the broker's URL.

Celery's `sentinel://` transport takes `sentinel://host:port;sentinel://host:port/db` and the master's
name as a transport option; Django's Redis cache knows only `redis://`. `SentinelPool` is a redis-py
`SentinelConnectionPool` that Django's `RedisCache` can build from that same URL (OPTIONS
`pool_class`): every new connection asks the Sentinels which server is master now, and a connection to
a demoted or dead master is dropped and made again, so the cache (intake rate limits, drain kicks)
follows a failover as the broker does.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from redis.sentinel import Sentinel, SentinelConnectionPool

SENTINEL_PORT = 26379


def sentinel_url_parse(url: str) -> tuple[list[tuple[str, int]], int]:
    """(Sentinel addresses, database number) of `sentinel://h1:p1;sentinel://h2:p2/db`."""
    hosts, db = [], 0
    for part in url.split(";"):
        split = urlsplit(part.strip())
        if split.scheme != "sentinel":
            raise ValueError(f"not a sentinel:// address: {part!r}")
        hosts.append((split.hostname or "127.0.0.1", split.port or SENTINEL_PORT))
        if split.path.strip("/"):
            db = int(split.path.strip("/"))
    return hosts, db


class SentinelPool(SentinelConnectionPool):
    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> SentinelPool:
        master_name = kwargs.pop("master_name")
        hosts, db = sentinel_url_parse(url)
        # Short timeouts: a dead Sentinel or master must cost a request a second, not a TCP timeout.
        timeouts: dict[str, Any] = {"socket_timeout": 1.0, "socket_connect_timeout": 1.0}
        manager = Sentinel(hosts, sentinel_kwargs=dict(timeouts), **timeouts)
        kwargs = {**timeouts, **kwargs}
        return cls(master_name, manager, db=db, **kwargs)
