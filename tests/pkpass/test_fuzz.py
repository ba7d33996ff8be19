"""Hypothesis: hostile bytes never raise anything but PkpassError and stay within bounded memory."""

from __future__ import annotations

import tracemalloc
from functools import cache

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from passpost.pkpass import PkpassError, Report, validate
from passpost.pkpass.cms import SignatureProblem, verify_detached
from tests.conftest import shared_sample
from tests.pkpass.pki import NOW, make_pki, rezip, signed, unzip

# Hundreds of generated inputs per test: long.
pytestmark = pytest.mark.slow

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# Whatever the input, validation keeps at most the (bounded) members plus working space.
MEMORY_BOUND = 24 * 1024 * 1024


@cache
def base_passes() -> tuple[bytes, ...]:
    """A pass signed here and two real ones from the shared samples."""
    pki = make_pki()
    passes = [signed(pki)]
    for name in ("apple-sample-boardingpass-2015.pkpass", "apple-sample-event-2012.pkpass"):
        passes.append(shared_sample(name).read_bytes())
    return tuple(passes)


def run_bounded(data: bytes) -> Report | PkpassError:
    """validate() under tracemalloc; only PkpassError may escape, and the peak is bounded."""
    tracemalloc.start()
    try:
        try:
            outcome: Report | PkpassError = validate(data, now=NOW)
        except PkpassError as exc:
            outcome = exc
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < MEMORY_BOUND + 20 * len(data), peak
    return outcome


@FUZZ
@given(st.binary(max_size=4096))
def test_arbitrary_bytes(data: bytes) -> None:
    outcome = run_bounded(data)
    assert isinstance(outcome, Report) and not outcome.ok


@FUZZ
@given(st.binary(max_size=2048))
def test_arbitrary_bytes_that_look_like_a_zip(tail: bytes) -> None:
    outcome = run_bounded(b"PK\x03\x04" + tail + b"PK\x05\x06" + tail[-18:])
    assert isinstance(outcome, Report)


mutation = st.tuples(
    st.sampled_from(["flip", "truncate", "insert", "delete", "overwrite"]),
    st.floats(min_value=0, max_value=1, allow_nan=False),
    st.binary(min_size=1, max_size=64),
)


def mutate(data: bytes, steps: list[tuple[str, float, bytes]]) -> bytes:
    for kind, where, chunk in steps:
        pos = int(where * (len(data) - 1)) if data else 0
        if kind == "flip":
            data = (
                data[:pos] + bytes([data[pos] ^ (chunk[0] or 1)]) + data[pos + 1 :]
                if data
                else data
            )
        elif kind == "truncate":
            data = data[:pos]
        elif kind == "insert":
            data = data[:pos] + chunk + data[pos:]
        elif kind == "delete":
            data = data[:pos] + data[pos + len(chunk) :]
        else:
            data = data[:pos] + chunk + data[pos + len(chunk) :]
    return data


@FUZZ
@given(st.integers(min_value=0, max_value=2), st.lists(mutation, min_size=1, max_size=4))
def test_mutated_real_passes(index: int, steps: list[tuple[str, float, bytes]]) -> None:
    passes = base_passes()
    outcome = run_bounded(mutate(passes[index % len(passes)], steps))
    assert isinstance(outcome, Report)


@FUZZ
@given(
    st.integers(min_value=0, max_value=2),
    st.sampled_from(["signature", "manifest.json", "pass.json"]),
    st.lists(mutation, min_size=1, max_size=4),
)
def test_mutated_members_of_real_passes(
    index: int, member: str, steps: list[tuple[str, float, bytes]]
) -> None:
    """Keep the ZIP intact so the mutation reaches the JSON and CMS parsers."""
    passes = base_passes()
    members = unzip(passes[index % len(passes)])
    members[member] = mutate(members[member], steps)
    outcome = run_bounded(rezip(members))
    assert isinstance(outcome, Report)


@FUZZ
@given(st.lists(mutation, min_size=1, max_size=6))
def test_mutated_signatures_only_raise_signature_problems(
    steps: list[tuple[str, float, bytes]],
) -> None:
    members = unzip(base_passes()[0])
    try:
        verify_detached(mutate(members["signature"], steps), members["manifest.json"])
    except SignatureProblem as problem:
        assert problem.code == "SIGNATURE_INVALID" and problem.message.endswith(".")


envelope_mutation = st.tuples(
    st.sampled_from(["flip", "truncate", "insert", "delete", "overwrite"]),
    # the ContentInfo/SignedData headers come first, the SignerInfo last: aim there
    st.one_of(st.floats(0, 0.06, allow_nan=False), st.floats(0.85, 1, allow_nan=False)),
    st.binary(min_size=1, max_size=8),
)


@FUZZ
@given(st.lists(envelope_mutation, min_size=1, max_size=3))
def test_mutated_signature_envelopes(steps: list[tuple[str, float, bytes]]) -> None:
    members = unzip(base_passes()[-1])
    members["signature"] = mutate(members["signature"], steps)
    outcome = run_bounded(rezip(members))
    assert isinstance(outcome, Report)
