"""Read, validate, verify and sign Apple Wallet passes (.pkpass); a pure library.

It imports nothing else of passpost: no web, no database. Every problem found in a pass is a
``Finding`` with a stable ``error_code`` (catalogue: ``ERROR_CODES``); ``PkpassError`` is the
only exception it raises.
"""

from passpost.pkpass.archive import Limits, read_archive
from passpost.pkpass.errors import ERROR_CODES, PkpassError
from passpost.pkpass.manifest import build_manifest
from passpost.pkpass.report import Finding, PassIdentity, Policy, Report
from passpost.pkpass.sign import sign, sign_folder
from passpost.pkpass.trust import apple_intermediates, apple_roots, load_certificates
from passpost.pkpass.validate import clear_caches, validate

__all__ = [
    "ERROR_CODES",
    "Finding",
    "Limits",
    "PassIdentity",
    "PkpassError",
    "Policy",
    "Report",
    "apple_intermediates",
    "apple_roots",
    "build_manifest",
    "clear_caches",
    "load_certificates",
    "read_archive",
    "sign",
    "sign_folder",
    "validate",
]
