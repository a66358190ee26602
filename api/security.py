"""API keys: ``nas_<prefix><secret>`` shown once; the database keeps the prefix (for lookup) and a SHA-256 hash.

A key carries 256 bits of randomness, so a fast hash is enough (no password stretching needed) and a leaked
database does not reveal usable keys.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

KEY_PREFIX_LENGTH = 12
_KEY_PATTERN = re.compile(r"^nas_[A-Za-z0-9_-]{43}$")


def generate_api_key() -> str:
    return "nas_" + secrets.token_urlsafe(32)


def is_well_formed(key: str) -> bool:
    return bool(_KEY_PATTERN.fullmatch(key))


def key_prefix(key: str) -> str:
    return key[:KEY_PREFIX_LENGTH]


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def key_matches(key: str, key_hash: str) -> bool:
    return hmac.compare_digest(hash_api_key(key), key_hash)
