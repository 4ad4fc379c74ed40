"""`verify`'s text output names each proof in words, a source's own checksum included (it
printed "source-crc32 (source-crc32)")."""

from __future__ import annotations

import pytest

from lakeshift.cli.verify_cmd import proof_text


@pytest.mark.parametrize(("proof", "words"), [
    ("source-crc32", "the source's own CRC32 checksum recomputed from the destination's bytes"),
    ("source-sha256", "the source's own SHA256 checksum recomputed from the destination's bytes"),
    ("source-md5", "the source's own MD5 equals the destination's"),
    ("multipart-etag", "the source's multipart ETag rebuilt from the destination's bytes"),
    ("something-new", "something-new"),
])
def test_each_proof_is_named_in_words(proof: str, words: str) -> None:
    assert proof_text(proof) == words
