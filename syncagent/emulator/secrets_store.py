"""The emulator's signing secret, kept in the data dir so tokens and URLs survive."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from pathlib import Path

_SECRET_FILE = "secret.key"


def load_secret(data_dir: Path) -> bytes:
    """Return the data dir's secret, creating it on first use."""
    path = data_dir / _SECRET_FILE
    if path.exists():
        return bytes.fromhex(path.read_text().strip())

    secret = secrets.token_bytes(32)
    path.write_text(secret.hex())
    path.chmod(0o600)
    return secret


def derive_key(secret: bytes, purpose: str) -> bytes:
    """Derive a separate key per purpose so a token key never signs a URL."""
    return hmac.new(secret, purpose.encode(), hashlib.sha256).digest()
