"""API keys: made once and shown once, stored only as SHA-256 digests, each with a role.

A keys file holds one key per line, ``sha256:HEX ROLE NAME`` (``#`` starts a comment). The
``read`` role may search, ask, chat and read articles; ``write`` may also upload, ingest and delete.
Keys are 256 random bits, so a plain SHA-256 is enough to store them: nothing short of the key
itself opens the door, and the file is useless to whoever reads it.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from rag.errors import InputError
from rag.settings import Settings

__all__ = ["ROLES", "ApiKey", "KeyRing", "add_key", "hash_key", "read_keys", "remove_key"]

ROLES = ("read", "write")
_LINE = re.compile(r"^sha256:([0-9a-f]{64})\s+(\S+)\s+(\S+)\s*$")
_NAME = re.compile(r"^[\w.@+-]{1,64}$", re.ASCII)


@dataclass(frozen=True)
class ApiKey:
    """A stored key: its digest, role and a name for logs and rate limits (never the key)."""

    digest: str  # hex SHA-256 of the key
    role: str
    name: str

    def allows(self, role: str) -> bool:
        return self.role == "write" or role == "read"

    def line(self) -> str:
        return f"sha256:{self.digest} {self.role} {self.name}"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def parse_keys(text: str, where: str) -> list[ApiKey]:
    """Keys from ``sha256:HEX ROLE NAME`` lines; a bad line is an error naming where it is."""
    keys: list[ApiKey] = []
    for n, raw in enumerate(re.split(r"[\n;]", text), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        m = _LINE.match(line)
        if not m:
            raise InputError(
                f"{where}, entry {n}: expected 'sha256:<64 hex digits> read|write NAME' "
                "(keys are stored hashed: make one with `rag keys add NAME`)"
            )
        digest, role, name = m.groups()
        if role not in ROLES:
            raise InputError(f"{where}, entry {n}: role must be read or write, not {role!r}")
        if any(k.name == name for k in keys):
            raise InputError(f"{where}, entry {n}: the name {name!r} is used twice")
        keys.append(ApiKey(digest, role, name))
    return keys


def read_keys(path: Path) -> list[ApiKey]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(
            f"no keys file at {path}: make one with `rag keys add NAME --keys {path}`"
        ) from None
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"cannot read the keys file {path}: {e}") from e
    return parse_keys(text, str(path))


def _write_keys(path: Path, keys: Sequence[ApiKey]) -> None:
    """Atomically, readable by the owner only (the digests are no secret, but nobody needs them)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    text = "# rag API keys: sha256:DIGEST ROLE NAME (made by `rag keys add`)\n"
    text += "".join(k.line() + "\n" for k in keys)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def add_key(path: Path, name: str, role: str) -> str:
    """Make a key, store its digest in ``path`` and return the key (shown once, never stored)."""
    if role not in ROLES:
        raise InputError(f"role must be read or write, not {role!r}")
    if not _NAME.match(name):
        raise InputError(f"key name {name!r}: use 1-64 letters, digits and . _ @ + -")
    keys = read_keys(path) if path.exists() else []
    if any(k.name == name for k in keys):
        raise InputError(f"a key named {name!r} exists in {path}: remove it first or pick a name")
    key = "rag-" + secrets.token_urlsafe(32)
    _write_keys(path, [*keys, ApiKey(hash_key(key), role, name)])
    return key


def remove_key(path: Path, name: str) -> None:
    keys = read_keys(path)
    kept = [k for k in keys if k.name != name]
    if len(kept) == len(keys):
        raise InputError(f"no key named {name!r} in {path}")
    _write_keys(path, kept)


class KeyRing:
    """The keys a server accepts. Empty: no key is asked (the server then binds loopback only)."""

    def __init__(self, keys: Iterable[ApiKey]) -> None:
        self.keys = tuple(keys)

    @classmethod
    def from_settings(cls, settings: Settings) -> KeyRing:
        keys = read_keys(settings.api_keys_file) if settings.api_keys_file else []
        extra = parse_keys(settings.api_keys, "RAG_API_KEYS")
        clash = {k.name for k in keys} & {k.name for k in extra}
        if clash:
            raise InputError(f"key names used in both the keys file and RAG_API_KEYS: {clash}")
        return cls([*keys, *extra])

    def __bool__(self) -> bool:
        return bool(self.keys)

    def find(self, key: str) -> ApiKey | None:
        """The stored key ``key`` hashes to. Every digest is compared, in constant time each, so
        the time taken says nothing about which key (or how much of one) matched."""
        digest = hash_key(key).encode()
        found = None
        for k in self.keys:
            if hmac.compare_digest(digest, k.digest.encode()):
                found = k
        return found
