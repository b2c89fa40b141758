"""Hashing and checking of the secrets callers present.

API tokens are looked up by an HMAC-SHA256 of the secret under the server key: an index can
find them, and a stolen catalog alone does not let anyone test guesses (a plain SHA-256, used
before, did; such hashes are upgraded on their next use). Device credentials may be short, so
they get a salted scrypt; once a device's secret has passed that slow check, its keyed digest
(HMAC under the server key, bound to the organization and the device) is kept beside it, and
later requests are checked against that in microseconds. The catalog alone still lets no one test
guesses: the digest needs the server key. Every comparison is constant-time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from cryptography.fernet import Fernet, InvalidToken

_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def token_hash(secret: str, key: bytes) -> str:
    return hmac.new(key, b"assetfiles:api-token:" + secret.encode(), hashlib.sha256).hexdigest()


def legacy_token_hash(secret: str) -> str:
    """How token secrets were hashed before they were keyed; still accepted, then upgraded."""
    return hashlib.sha256(secret.encode()).hexdigest()


def same_hash(left: str, right: str) -> bool:
    return hmac.compare_digest(left.encode(), right.encode())


def hash_device_secret(secret: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(secret.encode(), salt=salt, **_SCRYPT)
    return f"scrypt${salt.hex()}${digest.hex()}"


def device_digest(secret: str, org_id: str, device: str, key: bytes) -> str:
    """The fast check's digest of a device secret: keyed, and bound to the device it belongs to
    (so a digest copied to another device's row does not match there)."""
    message = f"assetfiles:device-secret:{org_id}/{device}\n{secret}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def verify_device_secret(secret: str, stored: str) -> bool:
    try:
        scheme, salt_hex, digest_hex = stored.split("$")
        salt = bytes.fromhex(salt_hex)
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    digest = hashlib.scrypt(secret.encode(), salt=salt, **_SCRYPT)
    return hmac.compare_digest(digest.hex(), digest_hex)


class Sealed:
    """Secrets the server must be able to read again (logins signed with them: EnOS applications
    and devices), kept sealed (Fernet) under a key derived from the server key for one purpose."""

    def __init__(self, server_key: bytes, purpose: str) -> None:
        derived = hashlib.sha256(f"assetfiles:{purpose}:".encode() + server_key).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(derived))

    def seal(self, secret: str) -> str:
        return self._fernet.encrypt(secret.encode()).decode()

    def open(self, sealed: str) -> str | None:
        """The secret; None when it was sealed under another server key."""
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except InvalidToken:
            return None
