"""Build and check a certificate path from the signer to a configured trust anchor."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

MAX_DEPTH = 6
# Path search visits at most this many partial paths: a signature can embed certificates
# crafted to branch, and verification must stay cheap whatever it embeds.
MAX_VISITS = 64
_CACHE_SIZE = 256
_CACHE_LOCK = threading.Lock()
_PATH_CACHE: OrderedDict[tuple[object, ...], tuple[list[tuple[x509.Certificate, ...]], object]] = (
    OrderedDict()
)


@dataclass(frozen=True)
class ChainResult:
    """A path leaf → … → anchor valid at the given time, or the reason there is none."""

    path: tuple[x509.Certificate, ...]
    problem_code: str | None = None
    problem: str | None = None


def build_chain(
    leaf: x509.Certificate,
    *,
    anchors: Sequence[x509.Certificate],
    intermediates: Sequence[x509.Certificate],
    at: datetime,
    at_label: str = "signing time",
) -> ChainResult:
    """Find a path to one of ``anchors`` whose every certificate is valid at ``at``."""
    complete = _complete_paths(leaf, tuple(anchors), tuple(intermediates))
    if not complete:
        return ChainResult(
            (),
            "SIGNATURE_UNTRUSTED",
            f"The signer certificate ({_cn(leaf)}) does not chain to a trusted root "
            f"(issuer: {_cn_of(leaf.issuer)}).",
        )
    for path in complete:
        if all(_valid_at(cert, at) for cert in path):
            return ChainResult(path)
    path = complete[0]
    bad = next(cert for cert in path if not _valid_at(cert, at))
    return ChainResult(
        path,
        "CERTIFICATE_NOT_VALID_AT_SIGNING_TIME",
        f"The certificate {_cn(bad)} was not valid at {at_label} {at:%Y-%m-%d %H:%M:%S} UTC "
        f"(valid {bad.not_valid_before_utc:%Y-%m-%d} to {bad.not_valid_after_utc:%Y-%m-%d}).",
    )


def _complete_paths(
    leaf: x509.Certificate,
    anchors: tuple[x509.Certificate, ...],
    intermediates: tuple[x509.Certificate, ...],
) -> list[tuple[x509.Certificate, ...]]:
    """Every path leaf → anchor, whatever the time; cached by the identity of the inputs.

    The entry keeps its inputs alive, so an id in a key cannot be reused by another object
    while the entry exists. Callers get the same certificate objects for the same DER (see
    cms._certificate_record and trust._bundled), so repeated signers hit this cache.
    """
    key = (id(leaf), tuple(map(id, anchors)), tuple(map(id, intermediates)))
    with _CACHE_LOCK:
        hit = _PATH_CACHE.get(key)
        if hit is not None:
            _PATH_CACHE.move_to_end(key)
            return hit[0]
    # A self-signed certificate in the pool can only be a root, and roots are trusted only
    # when configured as anchors: one embedded in the signature must never be.
    pool: dict[x509.Name, list[x509.Certificate]] = {}
    for cert in _unique(intermediates):
        if not _self_issued(cert):
            pool.setdefault(cert.subject, []).append(cert)
    complete: list[tuple[x509.Certificate, ...]] = []
    _extend((leaf,), pool, anchors, set(anchors), complete, [MAX_VISITS])
    with _CACHE_LOCK:
        _PATH_CACHE[key] = (complete, (leaf, anchors, intermediates))
        while len(_PATH_CACHE) > _CACHE_SIZE:
            _PATH_CACHE.popitem(last=False)
    return complete


def _extend(
    path: tuple[x509.Certificate, ...],
    pool: dict[x509.Name, list[x509.Certificate]],
    anchors: Sequence[x509.Certificate],
    anchor_set: set[x509.Certificate],
    complete: list[tuple[x509.Certificate, ...]],
    budget: list[int],
) -> None:
    budget[0] -= 1
    if budget[0] < 0:
        return
    current = path[-1]
    if current in anchor_set:
        complete.append(path)
        return
    for anchor in anchors:
        if _can_issue(anchor, len(path) - 1) and issued_by(current, anchor):
            complete.append((*path, anchor))
    if len(path) >= MAX_DEPTH:
        return
    for candidate in pool.get(current.issuer, ()):
        if candidate in path or not _can_issue(candidate, len(path) - 1):
            continue
        if issued_by(current, candidate):
            _extend((*path, candidate), pool, anchors, anchor_set, complete, budget)


@lru_cache(maxsize=4096)
def issued_by(child: x509.Certificate, issuer: x509.Certificate) -> bool:
    """True when ``issuer``'s name and key produced ``child``'s signature (cached: pure)."""
    if child.issuer != issuer.subject:
        return False
    try:
        key = issuer.public_key()
        params = child.signature_algorithm_parameters
        if isinstance(key, rsa.RSAPublicKey) and isinstance(params, padding.PSS | padding.PKCS1v15):
            hash_algorithm = child.signature_hash_algorithm
            if hash_algorithm is None:
                return False
            key.verify(child.signature, child.tbs_certificate_bytes, params, hash_algorithm)
        elif isinstance(key, ec.EllipticCurvePublicKey) and isinstance(params, ec.ECDSA):
            key.verify(child.signature, child.tbs_certificate_bytes, params)
        else:
            return False
    except (InvalidSignature, UnsupportedAlgorithm, ValueError, TypeError):
        return False
    return True


def _can_issue(cert: x509.Certificate, certs_below: int) -> bool:
    """A CA certificate allowed to sign, with a path length that admits ``certs_below``."""
    ca, path_length = _ca_constraints(cert)
    # certs_below counts the leaf too; pathLen counts only the intermediates under this CA.
    return ca and (path_length is None or certs_below - 1 <= path_length)


@lru_cache(maxsize=1024)
def _ca_constraints(cert: x509.Certificate) -> tuple[bool, int | None]:
    """(may sign certificates, pathLen) from BasicConstraints and KeyUsage (cached: pure)."""
    try:
        extensions = cert.extensions
    except ValueError:  # cryptography parses extensions lazily; a malformed one lands here
        return False, None
    try:
        constraints = extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return cert.version == x509.Version.v1, None  # legacy v1 roots carry no extensions
    if not constraints.ca:
        return False, None
    try:
        usage = extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return True, constraints.path_length
    return usage.key_cert_sign, constraints.path_length


def _valid_at(cert: x509.Certificate, at: datetime) -> bool:
    return cert.not_valid_before_utc <= at <= cert.not_valid_after_utc


def _self_issued(cert: x509.Certificate) -> bool:
    return cert.subject == cert.issuer


def _unique(certs: Sequence[x509.Certificate]) -> list[x509.Certificate]:
    seen: set[x509.Certificate] = set()
    unique = []
    for cert in certs:
        if cert not in seen:
            seen.add(cert)
            unique.append(cert)
    return unique


def _cn(cert: x509.Certificate) -> str:
    return _cn_of(cert.subject)


def _cn_of(name: x509.Name) -> str:
    values = name.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    if values:
        return f'"{values[0].value!s}"'
    return name.rfc4514_string() or "an empty name"


def clear_cache() -> None:
    """Forget cached paths, issuer checks and CA constraints."""
    issued_by.cache_clear()
    _ca_constraints.cache_clear()
    with _CACHE_LOCK:
        _PATH_CACHE.clear()
