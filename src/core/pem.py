"""PEM text as plain strings: split bundles, name certificates by a stable fingerprint."""

from __future__ import annotations

import hashlib


def fingerprint(pem: str) -> str:
    """A short, stable name for a certificate: the hash of its base64 body, so that line
    wrapping or surrounding blanks do not count."""
    body = "".join(
        line.strip() for line in pem.strip().splitlines() if line.strip() and "-----" not in line
    )
    return hashlib.sha256(body.encode()).hexdigest()[:16]


def split_pem(text: str) -> tuple[str, ...]:
    """The certificates of a PEM bundle, each normalised to end with a newline."""
    found: list[str] = []
    current: list[str] = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("-----BEGIN"):
            current = [line]
        elif line.startswith("-----END") and current:
            current.append(line)
            found.append("\n".join(current) + "\n")
            current = []
        elif current:
            current.append(line)
    return tuple(found)


def bundle_of(pems: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """CA certificates without repeats, in a stable order (by fingerprint)."""
    unique = {fingerprint(p): p.strip() + "\n" for p in pems if p.strip()}
    return tuple(unique[fp] for fp in sorted(unique))
