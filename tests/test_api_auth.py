"""Access control: the keys file, key checks, roles, the rate limit, where a server may listen, CORS.

Unit tests of the logic first (no server), then a real server with keys (uvicorn in a thread)."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from rag.api.app import create_app
from rag.api.keys import KeyRing, add_key, hash_key, parse_keys, read_keys, remove_key
from rag.api.ratelimit import RateLimiter
from rag.api.server import check_bind, is_loopback
from rag.errors import InputError
from rag.settings import Settings
from rag.system import System
from tests.api_server import LiveServer
from tests.conftest import HashEmbedder
from tests.test_api import make_index


# --- keys ---------------------------------------------------------------------------------------
def test_add_list_remove_keys(tmp_path: Path) -> None:
    path = tmp_path / "conf" / "keys"
    reader = add_key(path, "alice", "read")
    writer = add_key(path, "ci-bot", "write")
    assert reader.startswith("rag-") and len(reader) > 40 and reader != writer
    text = path.read_text()
    assert reader not in text and writer not in text  # only digests are stored
    assert f"sha256:{hash_key(reader)} read alice" in text
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    keys = read_keys(path)
    assert [(k.name, k.role) for k in keys] == [("alice", "read"), ("ci-bot", "write")]
    with pytest.raises(InputError, match="exists"):
        add_key(path, "alice", "write")
    with pytest.raises(InputError, match="role"):
        add_key(path, "bob", "admin")
    with pytest.raises(InputError, match="key name"):
        add_key(path, "bob smith", "read")
    remove_key(path, "alice")
    assert [k.name for k in read_keys(path)] == ["ci-bot"]
    with pytest.raises(InputError, match="no key named"):
        remove_key(path, "alice")


def test_bad_keys_files_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no keys file"):
        read_keys(tmp_path / "missing")
    digest = "a" * 64
    with pytest.raises(InputError, match="entry 2"):
        parse_keys(f"sha256:{digest} read a\nrag-plaintextkey read b\n", "keys")
    with pytest.raises(InputError, match="role must be"):
        parse_keys(f"sha256:{digest} owner a", "keys")
    with pytest.raises(InputError, match="used twice"):
        parse_keys(f"sha256:{digest} read a; sha256:{'b' * 64} write a", "RAG_API_KEYS")
    assert parse_keys(f"# comment\n\nsha256:{digest} write a  # trailing\n", "k")[0].role == "write"


def test_keyring_finds_only_the_right_key() -> None:
    ring = KeyRing(
        parse_keys(f"sha256:{hash_key('k1')} read r; sha256:{hash_key('k2')} write w", "x")
    )
    assert ring.find("k1").name == "r" and ring.find("k2").name == "w"  # type: ignore[union-attr]
    assert ring.find("k3") is None and ring.find("") is None and ring.find(hash_key("k1")) is None
    assert ring.find("k1").allows("read") and not ring.find("k1").allows("write")  # type: ignore[union-attr]
    assert ring.find("k2").allows("write")  # type: ignore[union-attr]
    assert not KeyRing([])


def test_keys_from_settings(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    add_key(path, "a", "read")
    extra = f"sha256:{hash_key('env-key')} write b"
    ring = KeyRing.from_settings(Settings(api_keys_file=path, api_keys=extra))
    assert [k.name for k in ring.keys] == ["a", "b"] and ring.find("env-key") is not None
    with pytest.raises(InputError, match="both"):
        KeyRing.from_settings(Settings(api_keys_file=path, api_keys=extra.replace(" b", " a")))


# --- rate limit ---------------------------------------------------------------------------------
def test_rate_limiter_bursts_then_refills_evenly() -> None:
    now = [100.0]
    limiter = RateLimiter(6, clock=lambda: now[0])  # 6 a minute: one every 10 s
    assert [limiter.check("a") for _ in range(6)] == [0.0] * 6
    wait = limiter.check("a")
    assert wait == pytest.approx(10.0)
    assert limiter.check("b") == 0.0  # per key
    now[0] += 5
    assert limiter.check("a") == pytest.approx(5.0)  # refused requests are not counted
    now[0] += 5
    assert limiter.check("a") == 0.0 and limiter.check("a") > 0
    now[0] += 3600  # a long pause refills to the burst, no more
    assert sum(limiter.check("a") == 0.0 for _ in range(10)) == 6
    assert RateLimiter(0).check("a") == 0.0


# --- where a server may listen ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("host", "loop"),
    [
        ("127.0.0.1", True),
        ("127.8.9.1", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.5", False),
        ("example.org", False),
    ],
)
def test_loopback(host: str, loop: bool) -> None:
    assert is_loopback(host) is loop


def test_no_keys_means_loopback_only() -> None:
    check_bind("127.0.0.1", KeyRing([]))
    with pytest.raises(InputError, match="refusing to listen on 0.0.0.0 without API keys"):
        check_bind("0.0.0.0", KeyRing([]))
    check_bind("0.0.0.0", KeyRing(parse_keys(f"sha256:{'a' * 64} read a", "x")))


# --- a real server with keys --------------------------------------------------------------------
READ, WRITE = "rag-read-key-for-tests", "rag-write-key-for-tests"


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    keys = f"sha256:{hash_key(READ)} read reader; sha256:{hash_key(WRITE)} write writer"
    settings = Settings(
        index_dir=make_index(tmp_path_factory.mktemp("keyed")), api_keys=keys, api_rate_limit=1000
    )
    srv = LiveServer(create_app(System(settings, embedder=HashEmbedder()))).start()
    yield srv
    srv.stop()


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.mark.parametrize(
    "headers",
    [
        {},
        auth("wrong"),
        {"Authorization": "Bearer"},
        {"Authorization": f"Basic {READ}"},
        {"Authorization": READ},
    ],
)
def test_without_a_valid_key_401(keyed: LiveServer, headers: dict[str, str]) -> None:
    for method, path, body in (
        ("POST", "/v1/search", {"query": "bridge"}),
        ("GET", "/v1/articles", None),
        ("GET", "/v1/models", None),
        ("DELETE", "/v1/articles/abc", None),
    ):
        r = httpx.request(method, keyed.url + path, json=body, headers=headers)
        assert r.status_code == 401, (path, r.text)
        assert r.json()["error"]["type"] == "unauthorized"
        assert r.headers["www-authenticate"] == "Bearer"


def test_probes_and_docs_need_no_key(keyed: LiveServer) -> None:
    assert httpx.get(keyed.url + "/healthz").status_code == 200
    assert httpx.get(keyed.url + "/openapi.json").json()["info"]["title"] == "rag-articles"
    schemes = httpx.get(keyed.url + "/openapi.json").json()["components"]["securitySchemes"]
    assert schemes["HTTPBearer"]["scheme"] == "bearer"


def test_read_key_reads_but_may_not_write(keyed: LiveServer) -> None:
    c = httpx.Client(base_url=keyed.url, headers=auth(READ), timeout=30)
    assert c.post("/v1/search", json={"query": "bridge"}).status_code == 200
    assert c.post("/v1/ask", json={"question": "When did the bridge reopen?"}).status_code == 200
    assert c.get("/v1/stats").status_code == 200
    aid = c.get("/v1/articles").json()["articles"][0]["id"]
    assert c.get(f"/v1/articles/{aid}").status_code == 200
    for r in (
        c.delete(f"/v1/articles/{aid}"),
        c.post("/v1/articles", json={"text": "A read key may not add this."}),
        c.post("/v1/articles", files=[("files", ("a.txt", b"nor this"))]),
        c.get("/v1/jobs/abc"),
    ):
        assert r.status_code == 403, r.text
        assert r.json()["error"] == {
            "type": "forbidden",
            "message": "the key 'reader' has the read role; uploads, deletions and jobs need a key "
            "with the write role",
        }
    assert c.get(f"/v1/articles/{aid}").status_code == 200  # still there


def test_write_key_writes(keyed: LiveServer) -> None:
    c = httpx.Client(base_url=keyed.url, headers=auth(WRITE), timeout=30)
    r = c.post("/v1/articles", json={"text": "The write key added this note about herons."})
    assert r.status_code == 202
    assert c.get(f"/v1/jobs/{r.json()['id']}").status_code == 200
    assert c.post("/v1/search", json={"query": "herons"}).status_code == 200


def test_rate_limit_per_key_429_with_retry_after(tmp_path: Path) -> None:
    keys = f"sha256:{hash_key(READ)} read reader; sha256:{hash_key(WRITE)} write writer"
    settings = Settings(index_dir=make_index(tmp_path), api_keys=keys, api_rate_limit=3)
    with LiveServer(create_app(System(settings, embedder=HashEmbedder()))) as srv:
        codes = [httpx.get(srv.url + "/v1/stats", headers=auth(READ)).status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        r = httpx.get(srv.url + "/v1/stats", headers=auth(READ))
        assert r.status_code == 429 and r.json()["error"]["type"] == "rate_limited"
        assert 1 <= int(r.headers["retry-after"]) <= 20
        assert httpx.get(srv.url + "/v1/stats", headers=auth(WRITE)).status_code == 200


def test_cors_off_unless_configured(tmp_path: Path, keyed: LiveServer) -> None:
    preflight = {
        "Origin": "https://evil.example",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type",
    }
    r = httpx.options(keyed.url + "/v1/search", headers=preflight)
    assert "access-control-allow-origin" not in r.headers
    settings = Settings(index_dir=make_index(tmp_path), api_cors_origins="https://chat.example")
    with LiveServer(create_app(System(settings, embedder=HashEmbedder()))) as srv:
        ok = httpx.options(
            srv.url + "/v1/search", headers={**preflight, "Origin": "https://chat.example"}
        )
        assert ok.headers["access-control-allow-origin"] == "https://chat.example"
        no = httpx.options(srv.url + "/v1/search", headers=preflight)
        assert "access-control-allow-origin" not in no.headers


def test_with_keys_any_host_name_may_be_used(keyed: LiveServer) -> None:
    """A keyed server is meant to be reached by name (behind a proxy, from a container)."""
    headers = {**auth(READ), "Host": "rag.example.org", "Origin": "https://cms.example.org"}
    assert httpx.get(keyed.url + "/v1/stats", headers=headers).status_code == 200
