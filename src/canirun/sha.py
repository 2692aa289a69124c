"""SHA-256 without loading OpenSSL: ``hashlib`` opens libcrypto (~10 ms of a CLI start).

CPython ships its own SHA-256 as a built-in module (``_sha2`` since 3.12, ``_sha256``
before); the digest is the same. ``hashlib`` stays the fallback for any other build.
"""

from __future__ import annotations

from typing import Any


def sha256(data: bytes = b"") -> Any:
    """A hashlib-style SHA-256 object (``update``, ``hexdigest``)."""
    try:
        from _sha2 import sha256 as builtin  # type: ignore[import-not-found]
    except ImportError:
        try:
            from _sha256 import sha256 as builtin  # type: ignore[import-not-found]
        except ImportError:
            from hashlib import sha256 as builtin
    return builtin(data)


def fingerprint(data: bytes) -> str:
    """A digest of ``data`` that tells whether data compiled from it is current: the 64-bit
    keyed SipHash that CPython checks hash-based ``.pyc`` files against their source with
    (``importlib.util.source_hash``), ~20 times faster than SHA-256 here (a scan fingerprints
    half a megabyte of catalog files, issue 15). For change detection only: not for data
    someone could craft to collide."""
    from importlib.util import source_hash

    return "siphash13:" + source_hash(data).hex()
