"""--preserve and --map-identities: the mapping table of docs/gen1-migration.md, the map
file's format, and the refusals (one clear line each)."""

from __future__ import annotations

from pathlib import Path

import pytest

import lakeshift
from lakeshift.engine.preserve import (
    IdentityMap,
    UnmappableError,
    gen2_access,
    preserve_set,
    read_identity_map,
)
from lakeshift.errors import UsageError
from lakeshift.stores.webhdfs.client import AclStatus

OID = "5d6f1a2b-0000-4000-8000-00000000abcd"
IDS = IdentityMap.of([("user:alice", "alice@contoso.com"), ("group:etl", OID),
                      ("hdfs", "$superuser"), ("group:hdfs", OID)])


def test_permission_bits_and_a_plain_acl() -> None:
    st = AclStatus("hdfs", "hdfs", "750", ())
    assert gen2_access(st, frozenset({"acl", "owner", "group"}), IDS, True).acl == \
        "user::rwx,group::r-x,other::---"
    plain = gen2_access(st, frozenset({"permissions"}), IDS, True)
    assert (plain.permissions, plain.acl, plain.owner) == ("rwxr-x---", "", "")
    owned = gen2_access(st, frozenset({"owner", "group"}), IDS, False)
    assert (owned.owner, owned.group) == ("$superuser", OID)


def test_named_entries_take_the_mask_from_the_group_bits_and_map_their_names() -> None:
    # HDFS: permission 770 with an extended ACL → the group bits are the mask; the owning
    # group's own bits are in the "group::" entry.
    st = AclStatus("alice", "etl", "770", ("user:alice:rwx", "group::r-x", "group:etl:rwx",
                                           "default:user::rwx", "default:group:etl:r-x",
                                           "default:other::---"))
    got = gen2_access(st, frozenset({"acl"}), IDS, True)
    assert got.acl == ("user::rwx,user:alice@contoso.com:rwx,group::r-x,"
                       f"group:{OID}:rwx,mask::rwx,other::---,default:user::rwx,"
                       f"default:group:{OID}:r-x,default:other::---")
    # Default entries belong to directories only.
    assert "default:" not in gen2_access(st, frozenset({"acl"}), IDS, False).acl


def test_an_unmappable_principal_names_itself() -> None:
    st = AclStatus("hdfs", "hdfs", "640", ("user:bob:r--",))
    with pytest.raises(UnmappableError, match=r"user 'bob'.*user:bob,") as e:
        gen2_access(st, frozenset({"acl"}), IDS, False)
    assert e.value.kind == "unmappable-principal" and e.value.exit_code == 1
    # A group may not borrow a user's mapping.
    with pytest.raises(UnmappableError, match="group 'alice'"):
        gen2_access(AclStatus("hdfs", "alice", "640", ()), frozenset({"group"}), IDS, False)


def test_the_map_file(tmp_path: Path) -> None:
    f = tmp_path / "ids.csv"
    f.write_text(f"source,destination\n# comment\n\nuser:alice, alice@contoso.com\netl,{OID}\n")
    assert read_identity_map(f) == (("user:alice", "alice@contoso.com"), ("etl", OID))
    f.write_text("alice\n")
    with pytest.raises(UsageError, match="line 1: expected 'source,destination'"):
        read_identity_map(f)
    with pytest.raises(UsageError, match="cannot read it"):
        read_identity_map(tmp_path / "missing.csv")


def test_preserve_names_are_checked() -> None:
    assert preserve_set("acl, owner") == {"acl", "owner"}
    with pytest.raises(UsageError, match="--preserve xattrs"):
        preserve_set("acl,xattrs")
    assert preserve_set("times,acl") == {"times", "acl"}


def test_preserve_times_is_accepted_between_any_stores_and_its_help_says_what_it_does() -> None:
    """The source's modification time is kept on every copy; --preserve times names it (and
    needs neither ACLs at the source nor a Gen2 destination)."""
    from types import SimpleNamespace

    from typer.testing import CliRunner

    from lakeshift.cli.app import app
    from lakeshift.engine.preserve import check_preserve

    flat = SimpleNamespace(capabilities=SimpleNamespace(acls=False, directories=False))
    check_preserve(preserve_set("times"), flat, flat)
    with pytest.raises(UsageError, match="the source has no ACLs"):
        check_preserve(preserve_set("times,owner"), flat, flat)
    out = " ".join(CliRunner().invoke(app, ["copy", "--help"], terminal_width=200).output.split())
    out = out.replace("│", "").replace("  ", " ")
    assert "times" in out and "lakeshift_src_mtime" in out and "mtime" in out, out


def test_a_map_without_preserve_is_refused(tmp_path: Path) -> None:
    from lakeshift.engine.copy_options import copy_options

    ids = tmp_path / "ids.csv"
    ids.write_text(f"alice,{OID}\n")
    with pytest.raises(UsageError, match="add --preserve"):
        copy_options(map_identities=str(ids))
    assert copy_options(map_identities=str(ids), preserve="owner").identity_map == (
        ("alice", OID),)


def test_the_api_refuses_preserve_from_a_source_without_acls(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.txt").write_text("a")
    with pytest.raises(UsageError, match="no ACLs"):
        lakeshift.copy(str(tmp_path / "src"), str(tmp_path / "dst"), preserve="acl")


def test_the_sticky_bit_is_kept_as_four_digit_octal() -> None:
    st = AclStatus("hdfs", "hdfs", "1777", ())
    assert gen2_access(st, frozenset({"permissions"}), IDS, True).permissions == "1777"
    with_acl = gen2_access(st, frozenset({"acl"}), IDS, True)
    assert (with_acl.acl, with_acl.permissions) == (
        "user::rwx,group::rwx,other::rwx", "1777")  # set after the ACL: no entry holds it
    assert gen2_access(AclStatus("hdfs", "hdfs", "0750", ()), frozenset({"acl"}), IDS,
                       True).permissions == ""


def test_parent_directories_are_set_under_their_names_at_the_destination() -> None:
    """A renamed (encoded) folder: its access is read from the source's name and set on
    the destination's, taken from the object's destination key."""
    import asyncio
    from types import SimpleNamespace

    from lakeshift.engine.events import EventBus
    from lakeshift.engine.preserve import AccessKeeper
    from lakeshift.engine.retry import RetryPolicy
    from lakeshift.model import ObjectInfo

    read: list[str] = []
    set_on: list[str] = []

    class Src:
        async def acl_status(self, key: str) -> AclStatus:
            read.append(key)
            return AclStatus("hdfs", "hdfs", "750", ())

    class Dst:
        async def set_access(self, key: str, access: object) -> None:
            set_on.append(key)

    ctx = SimpleNamespace(src=Src(), dst=Dst(), policy=RetryPolicy(), src_limit=None,
                          dst_limit=None)
    keeper = AccessKeeper(ctx, frozenset({"permissions"}), IDS, "lake/", "out/", EventBus())
    asyncio.run(keeper.apply(ObjectInfo("lake/bad:dir/x.txt", 1), "out/bad%3Adir/x.txt"))
    assert read == ["lake/bad:dir", "lake/bad:dir/x.txt"]
    assert set_on == ["out/bad%3Adir/", "out/bad%3Adir/x.txt"]


def test_directories_done_are_remembered_within_a_bound(monkeypatch: pytest.MonkeyPatch
                                                        ) -> None:
    """Memory stays flat over many directories; each is still set once while its objects
    come (together, as the listing gives them)."""
    import asyncio
    from types import SimpleNamespace

    from lakeshift.engine import preserve
    from lakeshift.engine.events import EventBus
    from lakeshift.engine.retry import RetryPolicy
    from lakeshift.model import ObjectInfo

    set_on: list[str] = []

    class Src:
        async def acl_status(self, key: str) -> AclStatus:
            return AclStatus("hdfs", "hdfs", "750", ())

    class Dst:
        async def set_access(self, key: str, access: object) -> None:
            set_on.append(key)

    monkeypatch.setattr(preserve, "RECENT_DIRS", 8)
    ctx = SimpleNamespace(src=Src(), dst=Dst(), policy=RetryPolicy(), src_limit=None,
                          dst_limit=None)
    keeper = preserve.AccessKeeper(ctx, frozenset({"permissions"}), IDS, "", "", EventBus())

    async def main() -> None:
        for d in range(100):
            for f in range(3):
                key = f"top/d{d:03d}/f{f}"
                await keeper.apply(ObjectInfo(key, 1), key)

    asyncio.run(main())
    dirs = [k for k in set_on if k.endswith("/")]
    assert len(dirs) == len(set(dirs)) == 101  # top/ and each d###/ once
    assert len(keeper._dirs) <= 8
