"""The token-vector codec of an index, the same for every job and every worker that writes it.

The codec (a centre and a spread per dimension) is calibrated on the first batch written to a new
index and stored with it by compare-and-set before anything is written with it: a codec another
writer stored first is the index's, and is adopted. A Ray worker whose block is not the first
waits for the first block's codec, so the index's codec does not depend on which worker ran first.
"""

from __future__ import annotations

import time

from lsrkit.core.errors import IngestError
from lsrkit.core.types import MultiVector
from lsrkit.plugin.base import Backend
from lsrkit.plugin.codec import MultiVectorCodec
from lsrkit.plugin.pipeline import CODEC_META


class IndexCodec:
    def __init__(self, backend: Backend, index: str, representation: str, *, enabled: bool = True) -> None:
        self.backend, self.index, self.representation, self.enabled = backend, index, representation, enabled
        self.codec: MultiVectorCodec | None = None

    def stored(self) -> MultiVectorCodec | None:
        """The codec stored with the index (None for a new one)."""
        meta = self.backend.get_meta(self.index, CODEC_META)
        if not meta:
            return None
        codec = MultiVectorCodec.from_meta(meta)
        if codec.name != self.representation:
            raise IngestError(f"index {self.index!r} stores {codec.name} token vectors, not {self.representation}: recreate it to change")
        self.codec = codec
        return codec

    def for_batch(self, multi: list[MultiVector | None], *, calibrate: bool = True, wait_seconds: float = 0.0) -> MultiVectorCodec | None:
        """The codec to encode this batch's token vectors with. `calibrate`: a new index's codec may
        be calibrated on this batch; else wait up to `wait_seconds` for the one that is."""
        if self.codec is not None or not self.enabled or not any(mv is not None for mv in multi):
            return self.codec
        if self.stored() is not None:
            return self.codec
        if calibrate:
            codec = MultiVectorCodec.calibrate(self.representation, [mv.vectors for mv in multi if mv is not None])
            if self.backend.swap_meta(self.index, CODEC_META, None, codec.to_meta()):
                self.codec = codec
                return codec
            return self.stored()  # another writer stored one first
        deadline = time.monotonic() + wait_seconds
        while time.monotonic() < deadline:
            time.sleep(0.5)
            if self.stored() is not None:
                return self.codec
        raise IngestError(f"index {self.index!r}: no token-vector codec was stored within {wait_seconds:g} s by the job's first batch")


__all__ = ["IndexCodec"]
