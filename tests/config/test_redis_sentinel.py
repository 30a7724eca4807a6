"""A broker and cache behind Redis Sentinel: production settings read a `sentinel://` URL, and the
cache's Sentinel pool follows a real failover (a Redis master and replica, one Sentinel, the master
SIGKILLed)."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from django.core.cache.backends.redis import RedisCache

from config.redis_sentinel import sentinel_url_parse

ROOT = Path(__file__).resolve().parents[2]


def test_sentinel_url_parse():
    hosts, db = sentinel_url_parse("sentinel://10.0.0.1:26379;sentinel://10.0.0.2;sentinel://10.0.0.3:26380/2")
    assert hosts == [("10.0.0.1", 26379), ("10.0.0.2", 26379), ("10.0.0.3", 26380)] and db == 2
    with pytest.raises(ValueError):
        sentinel_url_parse("redis://10.0.0.1:6379/0")


def test_production_settings_take_a_sentinel_broker():
    url = "sentinel://10.0.0.1:26379;sentinel://10.0.0.2:26379/0"
    env = {
        "PATH": "/usr/bin:/bin",
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "SECRET_KEY": "k" * 20 + "9f8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c3b2a1",
        "DATABASE_URL": "postgres://backstop@db.internal/backstop",
        "CELERY_BROKER_URL": url,
        "REDIS_SENTINEL_MASTER": "backstop",
        "ALLOWED_HOSTS": "oncall.example.com",
        "BACKSTOP_ALLOW_CONSOLE_EMAIL": "true",
    }
    code = (
        "import json; from django.conf import settings; "
        "print(json.dumps([settings.CELERY_BROKER_TRANSPORT_OPTIONS, settings.CACHES['default']]))"
    )
    done = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    transport, cache = json.loads(done.stdout.strip().splitlines()[-1])
    assert transport == {"visibility_timeout": 300, "master_name": "backstop"}
    assert cache["LOCATION"] == [url]
    assert cache["OPTIONS"] == {"pool_class": "config.redis_sentinel.SentinelPool", "master_name": "backstop"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _answers(port: int) -> bool:
    try:
        return bool(redis.Redis(port=port, socket_timeout=0.5).ping())
    except redis.RedisError:
        return False


@pytest.fixture
def sentinel_set(tmp_path) -> Iterator[dict]:
    """A master, its replica and one Sentinel (quorum 1, a master is down after 2 s: with less, a loaded
    machine sees a live master as down)."""
    if shutil.which("redis-sentinel") is None or shutil.which("redis-server") is None:
        pytest.skip("no redis-server / redis-sentinel on this machine (Debian: redis-sentinel)")
    ports = {"master": _free_port(), "replica": _free_port(), "sentinel": _free_port()}
    procs: dict[str, subprocess.Popen] = {}
    base = ["redis-server", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(tmp_path)]
    try:
        procs["master"] = subprocess.Popen([*base, "--port", str(ports["master"])], stdout=subprocess.DEVNULL)
        procs["replica"] = subprocess.Popen(
            [*base, "--port", str(ports["replica"]), "--replicaof", "127.0.0.1", str(ports["master"])],
            stdout=subprocess.DEVNULL,
        )
        conf = tmp_path / "sentinel.conf"
        conf.write_text(
            f"port {ports['sentinel']}\nbind 127.0.0.1\ndir {tmp_path}\n"
            f"sentinel monitor test 127.0.0.1 {ports['master']} 1\n"
            "sentinel down-after-milliseconds test 2000\nsentinel failover-timeout test 5000\n"
        )
        procs["sentinel"] = subprocess.Popen(["redis-sentinel", str(conf)], stdout=subprocess.DEVNULL)
        for name in ports:
            _wait(lambda name=name: _answers(ports[name]), 10, f"{name} to answer")
        sentinel = redis.Redis(port=ports["sentinel"], decode_responses=True)
        _wait(lambda: bool(sentinel.execute_command("SENTINEL", "REPLICAS", "test")), 20, "the replica to be seen")

        def master_settled() -> bool:
            info = sentinel.sentinel_master("test")  # redis-py parses the reply; flags become booleans
            return info["is_master"] and not info["is_sdown"] and int(info["port"]) == ports["master"]

        _wait(master_settled, 20, "the Sentinel to see a healthy master")
        yield {"ports": ports, "procs": procs, "sentinel": sentinel}
    finally:
        for proc in procs.values():
            proc.kill()
            proc.wait(timeout=5)


@pytest.mark.slow
def test_the_cache_follows_a_failover(sentinel_set):
    ports, procs, sentinel = sentinel_set["ports"], sentinel_set["procs"], sentinel_set["sentinel"]
    url = f"sentinel://127.0.0.1:{ports['sentinel']}/0"
    cache = RedisCache([url], {"OPTIONS": {"pool_class": "config.redis_sentinel.SentinelPool", "master_name": "test"}})
    cache.set("k", "before", 60)
    assert cache.get("k") == "before"
    assert redis.Redis(port=ports["master"]).exists(":1:k")  # it went to the master

    procs["master"].send_signal(signal.SIGKILL)

    def promoted() -> bool:
        return int(sentinel.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", "test")[1]) == ports["replica"]

    _wait(promoted, 30, "the Sentinel to promote the replica")

    def writes() -> bool:
        try:
            cache.set("k", "after", 60)
            return True
        except redis.RedisError:
            return False  # the first call on a connection to the dead master fails; the pool reconnects

    _wait(writes, 10, "the cache to write to the new master")
    assert cache.get("k") == "after"
    assert redis.Redis(port=ports["replica"]).get(":1:k") is not None
