"""Snowflake-style ids: positive 63-bit integers, roughly time-ordered, never reused."""

from __future__ import annotations

import os
import secrets
import threading
import time

EPOCH_MS = 1_700_000_000_000
_lock = threading.Lock()
_last_ms = 0
_sequence = 0
# 10 bits of node identity: random per process, so many API/worker processes do not collide.
_node = (secrets.randbits(10) ^ os.getpid()) & 0x3FF


def new_id() -> int:
    """Return a new id: 41 bits of milliseconds, 10 bits of node, 12 bits of sequence."""
    global _last_ms, _sequence
    with _lock:
        now = int(time.time() * 1000)
        if now < _last_ms:
            now = _last_ms
        if now == _last_ms:
            _sequence = (_sequence + 1) & 0xFFF
            if _sequence == 0:
                while now <= _last_ms:
                    now = int(time.time() * 1000)
        else:
            _sequence = 0
        _last_ms = now
        return ((now - EPOCH_MS) << 22) | (_node << 12) | _sequence
