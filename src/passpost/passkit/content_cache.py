"""Signed pass bytes kept in memory for the latest-pass call, keyed by pass version.

A version's bytes never change once stored (an update is a new version with a new id), so
an entry can never be stale: nothing needs invalidating, in this process or any other. What
is cached is only ever the answer to "the bytes of version V"; which version is the latest
is read from the database on every call.

Bounded by bytes (least recently used out first). A version enters on its second download
within a while: a personal pass is fetched by one device once per version, and caching it on
first sight would push out the shared passes that thousands of devices fetch.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

DEFAULT_MAX_BYTES = 64 * 1024 * 1024
# Versions seen once (admitted on the next sight); forgotten all at once when this many.
DEFAULT_DOORKEEPER = 65536


class ContentCache:
    """``version id -> bytes``, at most ``max_bytes`` in all; safe to share between threads."""

    def __init__(
        self, *, max_bytes: int = DEFAULT_MAX_BYTES, doorkeeper: int = DEFAULT_DOORKEEPER
    ) -> None:
        self.max_bytes = max_bytes
        self._doorkeeper_size = doorkeeper
        self._entries: OrderedDict[int, bytes] = OrderedDict()
        self._seen: set[int] = set()
        self._size = 0
        self._lock = threading.Lock()

    @property
    def size(self) -> int:
        """Bytes held now."""
        return self._size

    def __contains__(self, version_id: int) -> bool:
        return version_id in self._entries

    def get(self, version_id: int) -> bytes | None:
        """The bytes of a version, if held (it becomes the most recently used)."""
        with self._lock:
            content = self._entries.get(version_id)
            if content is not None:
                self._entries.move_to_end(version_id)
            return content

    def offer(self, version_id: int, content: bytes) -> None:
        """Bytes just read from the database: kept if this version was asked for before."""
        if len(content) > self.max_bytes:
            return
        with self._lock:
            if version_id in self._entries:
                return
            if version_id not in self._seen:
                if len(self._seen) >= self._doorkeeper_size:
                    self._seen.clear()
                self._seen.add(version_id)
                return
            self._seen.discard(version_id)
            self._entries[version_id] = content
            self._size += len(content)
            while self._size > self.max_bytes:
                _, evicted = self._entries.popitem(last=False)
                self._size -= len(evicted)
