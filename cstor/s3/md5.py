"""The MD5s of the parts a multipart copy sends, several side by side.

MD5 is one chain of dependent steps: one part at a time leaves a core mostly
waiting. `_md5lanes` (C, built with the package) hashes up to eight parts of one
length at once, in about the time of two; where it was not built, hashlib hashes
them one after the other.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

Pieces = Sequence[memoryview]
"""A part as the buffers it arrived in, in order."""

_md5_lanes: Callable[[Sequence[Pieces]], list[bytes]] | None
try:
    from cstor.s3._md5lanes import md5_lanes as _md5_lanes
except ImportError:  # installed without a C compiler
    _md5_lanes = None

LANES = 8
"""Parts hashed at once by `_md5lanes`; more than that wait for the next round."""


def side_by_side() -> bool:
    """Whether parts are hashed several at once here (the extension was built)."""
    return _md5_lanes is not None


def md5s_of(parts: Sequence[Pieces]) -> list[str]:
    """Each part's MD5 (hex), in order; parts of one length are hashed side by side.

    Blocks the caller (run it in a thread): the hashing itself lets go of the GIL.
    """
    digests: list[str] = [""] * len(parts)
    by_length: dict[int, list[int]] = {}
    for index, pieces in enumerate(parts):
        by_length.setdefault(sum(piece.nbytes for piece in pieces), []).append(index)
    for indexes in by_length.values():
        if _md5_lanes is not None and len(indexes) > 1:
            found = _md5_lanes([parts[index] for index in indexes])
            for index, found_digest in zip(indexes, found, strict=True):
                digests[index] = found_digest.hex()
            continue
        for index in indexes:
            digest = hashlib.md5(usedforsecurity=False)
            for piece in parts[index]:
                digest.update(piece)
            digests[index] = digest.hexdigest()
    return digests
