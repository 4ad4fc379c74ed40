"""lakeshift.copy takes --preserve and --map-identities as arguments (issue 10's parity): a
Gen1 file's ACL arrives at the Gen2 double mapped, through the public API."""

from __future__ import annotations

from pathlib import Path

import lakeshift
from tests.doubles.dfs import DfsDouble
from tests.doubles.fixtures import GEN1_HOST
from tests.doubles.webhdfs import WebHdfsDouble

SRC_ID, DST_ID = "33333333-0000-4000-8000-000000000001", "bbbbbbbb-0000-4000-8000-000000000001"


def test_copy_with_preserve_through_the_api(container: str, gen1: WebHdfsDouble,
                                            gen2: DfsDouble, tmp_path: Path) -> None:
    # (container first: its fixture points the environment at Azurite itself, gen2's after)
    gen1.write("api/f.txt", b"f")
    gen1.acls["api/f.txt"] = [f"user:{SRC_ID}:r--", "group::r--"]
    ids = tmp_path / "ids.csv"
    ids.write_text(f"{SRC_ID},{DST_ID}\n")
    result = lakeshift.copy(f"adl://{GEN1_HOST}/api/", f"az://{container}/api/",
                            preserve=["acl"], map_identities=ids)
    assert result.exit_code == 0 and result.stats.copied == 1
    assert gen2.access[(container, "api/f.txt")].acl == \
        f"user::rw-,user:{DST_ID}:r--,group::r--,mask::r--,other::r--"
