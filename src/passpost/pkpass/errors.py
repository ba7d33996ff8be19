"""The library's one exception type and the catalogue of stable error codes."""

from __future__ import annotations

# Every code a Finding or a PkpassError can carry, with what it means. The codes are part of
# the public contract (the import API returns them as errorCode): never rename one.
ERROR_CODES: dict[str, str] = {
    # --- the archive (always errors; validate() reports them as the only finding)
    "FILE_UNREADABLE": "the .pkpass path given could not be read",
    "NOT_A_ZIP": "the data is not a ZIP archive",
    "ZIP_CORRUPT": "the ZIP archive is damaged (bad header, CRC or compressed data)",
    "ZIP_TOO_LARGE": "the archive is larger than the configured maximum",
    "ZIP_TOO_MANY_MEMBERS": "the archive has more entries than the configured maximum",
    "ZIP_MEMBER_TOO_LARGE": "one entry uncompresses to more than the per-entry maximum",
    "ZIP_BOMB": "the entries uncompress to more than the total or ratio bound",
    "ZIP_UNSAFE_PATH": "an entry name is absolute, has '..', '.', a backslash or a drive",
    "ZIP_NAME_TOO_LONG": "an entry name is longer than 255 bytes",
    "ZIP_DUPLICATE_NAME": "two entries have the same name",
    "ZIP_SYMLINK": "an entry is a symbolic link",
    "ZIP_ENCRYPTED": "an entry is encrypted",
    "ZIP_UNSUPPORTED_COMPRESSION": "an entry uses a compression other than stored/deflate",
    "PKPASSES_NOT_SUPPORTED": "the archive is a .pkpasses bundle of passes, not one pass",
    # --- pass.json
    "PASS_JSON_MISSING": "there is no pass.json at the top of the archive",
    "PASS_JSON_INVALID": "pass.json is not UTF-8 JSON describing an object",
    "PASS_JSON_TRAILING_COMMA": "(warning) pass.json has trailing commas; Wallet accepts it",
    "PASS_JSON_BOM": "(warning) pass.json starts with a UTF-8 byte order mark",
    "PASS_JSON_TOO_DEEP": "pass.json nests lists or objects more than 20 levels deep",
    "PASS_VALUE_TOO_LONG": "a string in pass.json is longer than its limit (identifiers and "
    "authenticationToken 255 characters, teamIdentifier 64, organizationName and description "
    "1,000, any other string 65,536)",
    "PASS_DESCRIPTION_BLANK": "(warning) description is only whitespace; Wallet accepts it",
    "PASS_MISSING_KEY": "a required top-level key of pass.json is absent",
    "PASS_KEY_INVALID": "a required key of pass.json has the wrong type or is empty",
    "PASS_FORMAT_VERSION_INVALID": "formatVersion is not the number 1",
    "PASS_STYLE_MISSING": "pass.json has none of the five style keys",
    "PASS_STYLE_MULTIPLE": "pass.json has more than one style key",
    "PASS_TRANSIT_TYPE_MISSING": "a boardingPass has no transitType",
    "PASS_TRANSIT_TYPE_INVALID": "transitType is not one of the PKTransitType values",
    "PASS_WEB_SERVICE_INVALID": "webServiceURL is not an https URL (http only for localhost)",
    "PASS_WEB_SERVICE_INSECURE": "(warning) webServiceURL is plain http to localhost",
    "PASS_AUTH_TOKEN_MISSING": "webServiceURL is set but authenticationToken is not",
    "PASS_AUTH_TOKEN_SHORT": "authenticationToken is shorter than 16 characters",
    "PASS_AUTH_TOKEN_UNUSED": "(warning) authenticationToken without webServiceURL",
    "ICON_MISSING": "there is no icon.png (top level or in an .lproj folder)",
    # --- manifest.json (errors under every policy: Wallet opens no pass without one)
    "MANIFEST_MISSING": "there is no manifest.json",
    "MANIFEST_INVALID": "manifest.json is not a JSON object of file name to SHA-1/256 hex",
    "MANIFEST_DIGEST_MISMATCH": "a file's digest differs from the one in manifest.json",
    "MANIFEST_FILE_MISSING": "manifest.json lists a file that is not in the archive",
    "MANIFEST_UNLISTED_FILE": "the archive has a file manifest.json does not list",
    # --- the signature (errors under policy "require", warnings under "warn", skipped "off")
    "SIGNATURE_MISSING": "there is no signature file",
    "SIGNATURE_INVALID": "the signature is not a valid detached CMS signature of manifest.json",
    "SIGNATURE_UNTRUSTED": "the signer certificate does not chain to a trusted root",
    "CERTIFICATE_NOT_VALID_AT_SIGNING_TIME": "a chain certificate was not valid at signingTime "
    "(or now, when the signature has no signingTime)",
    "SIGNING_TIME_IN_FUTURE": "the signature's signingTime is later than now",
    "SIGNER_NOT_PASS_TYPE_ID": "the signer is not a Pass Type ID certificate",
    "SIGNER_MISMATCH": "the Pass Type ID certificate is for another pass type or team",
    "CERTIFICATE_EXPIRED": "(warning) the signer certificate has expired since signing",
    # --- arguments (programming errors, raised as PkpassError)
    "POLICY_INVALID": "the signature policy is not require, warn or off",
    "CERTIFICATE_UNREADABLE": "a certificate file is neither PEM nor DER X.509",
    "SIGN_INVALID_INPUT": "sign() was given unusable files, key or certificate",
}


class PkpassError(Exception):
    """The library's only exception: ``error_code`` is stable UPPER_SNAKE, ``message`` a sentence.

    It is deliberately not a ``passpost.errors.PasspostError`` (this package imports nothing
    else of passpost); callers wrap it, e.g. ``BadRequest(e.message, error_code=e.error_code)``.
    """

    def __init__(self, error_code: str, message: str, *, files: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.error_code = error_code
        self.message = message
        self.files = files

    def __repr__(self) -> str:
        return f"PkpassError({self.error_code!r}, {self.message!r})"
