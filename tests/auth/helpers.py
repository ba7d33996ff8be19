"""Kept for existing imports: the app and operator helpers live in ``tests.support.app``."""

from tests.support.app import PASSWORD, USERNAME, basic, make_client

__all__ = ["PASSWORD", "USERNAME", "basic", "make_client"]
