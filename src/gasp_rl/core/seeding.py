"""Seeds derived from a base seed and a path: the one scheme every algorithm uses.

``derive_seed(base, *parts)`` hashes ``"base:part1:part2..."`` with blake2b (8 bytes) and keeps 62
bits, so nearby paths (iteration 3 vs 4) give unrelated random streams, the value is the same in
every process (Python's string hashing is salted per process, this is not), and a resumed run
derives exactly the seeds the uninterrupted run would have.
"""

from __future__ import annotations

import hashlib


def derive_seed(base: int, *parts: object) -> int:
    """A 62-bit seed from ``base`` and a path such as ``("rlvr", iteration, k)``."""
    text = ":".join(str(p) for p in (base, *parts))
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big") >> 2
