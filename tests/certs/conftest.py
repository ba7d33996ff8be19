"""Fixtures of the certificate tests: .p12 files of the test PKI."""

from __future__ import annotations

import pytest

from tests.support.passes import TestPki, make_p12


@pytest.fixture
def p12(pki: TestPki) -> bytes:
    return make_p12(pki)
