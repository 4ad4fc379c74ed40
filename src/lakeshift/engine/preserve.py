"""``--preserve acl,owner,group,permissions[,times]`` and ``--map-identities``: a source path's
owner, group, permission bits and ACLs (WebHDFS ``GETACLSTATUS``) set on its copy (ADLS Gen2
Path - Update ``setAccessControl``), principals renamed through the identity map.

Mapping (docs/gen1-migration.md has the table): permission bits → the base entries
``user::``, ``group::``, ``other::``; named entries ``user:NAME:`` / ``group:NAME:`` and
``default:`` entries → the same entries with NAME mapped; with named entries the group bits
are the mask (POSIX and HDFS alike), so ``mask::`` carries them and ``group::`` comes from the
source's own ``group::`` entry.  A principal is mapped when the map names it; one that is
already an Entra object ID (a GUID: Gen1's principals are) or ``$superuser`` stays; any other
is *unmappable*: that path's access is not set and it is recorded as a failure naming the
principal — never dropped silently.

Directories: a file's parent directories (under the copy's root) get their access once per
pipeline, before the file's own; an empty directory's marker gets its directory's.
"""

from __future__ import annotations

import csv
import io
import re
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from lakeshift.engine.events import EventBus, ObjectDone
from lakeshift.engine.retry import retry
from lakeshift.errors import AuthError, LakeshiftError, ObjectError, UsageError
from lakeshift.model import ObjectInfo
from lakeshift.stores.base import AccessReader, DirectoryWriter, PathAccess

PRESERVABLE = ("acl", "owner", "group", "permissions", "times")
#: What is kept through the DFS endpoint (an AccessKeeper); ``times`` is not: the source's
#: modification time is kept on every copy, asked for or not — on Azure as the
#: ``lakeshift_src_mtime`` metadata (ADLS Gen2 sets Last-Modified itself and takes no other
#: time), on local disk as the file's mtime — so ``times`` only names it.
ACCESS = frozenset({"acl", "owner", "group", "permissions"})
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
                   r"[0-9a-fA-F]{12}$")


class UnmappableError(ObjectError):
    """A principal of the source that the identity map does not name."""

    kind = "unmappable-principal"


_UNMAPPED = re.compile(r"\b(user|group) '([^']*)' has no destination identity")


def unmapped_principal(message: str) -> str | None:
    """The principal (``user:bob``) an UnmappableError's message names, else None."""
    m = _UNMAPPED.search(message)
    return f"{m.group(1)}:{m.group(2)}" if m else None


def preserve_set(value: str | Iterable[str]) -> frozenset[str]:
    """``"acl,owner"`` (the flag's spelling) or an iterable; unknown names are refused."""
    parts = value.split(",") if isinstance(value, str) else value
    chosen = frozenset(p.strip() for p in parts if p.strip())
    unknown = chosen - set(PRESERVABLE)
    if unknown:
        raise UsageError(f"--preserve {','.join(sorted(unknown))}: use any of "
                         f"{','.join(PRESERVABLE)}")
    return chosen


def read_identity_map(path: str | Path) -> tuple[tuple[str, str], ...]:
    """The ``--map-identities`` file: CSV, one ``source,destination`` pair a line; the
    source may be ``user:NAME`` or ``group:NAME`` to map only that kind of principal (else
    both); the destination is an Entra object ID or a UPN.  ``#`` lines, blank lines and a
    ``source,destination`` header are ignored."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise UsageError(f"--map-identities {p}: cannot read it ({e.strerror or e}): fix "
                         "the path") from None
    pairs: list[tuple[str, str]] = []
    for number, row in enumerate(csv.reader(io.StringIO(text)), 1):
        cells = [c.strip() for c in row]
        if not cells or not any(cells) or cells[0].startswith("#"):
            continue
        if [c.lower() for c in cells] == ["source", "destination"]:
            continue
        if len(cells) != 2 or not all(cells):
            raise UsageError(f"--map-identities {p}, line {number}: expected "
                             "'source,destination' (e.g. user:alice,<object id>)")
        pairs.append((cells[0], cells[1]))
    return tuple(pairs)


@dataclass(frozen=True)
class IdentityMap:
    pairs: Mapping[str, str]

    @classmethod
    def of(cls, pairs: Iterable[tuple[str, str]]) -> IdentityMap:
        return cls(dict(pairs))

    def map(self, kind: str, name: str) -> str:
        """``name`` of a ``user`` or ``group`` at the destination, or UnmappableError."""
        for key in (f"{kind}:{name}", name):
            if key in self.pairs:
                return self.pairs[key]
        if name == "$superuser" or _GUID.match(name):
            return name
        raise UnmappableError(f"{kind} {name!r} has no destination identity: add "
                              f"'{kind}:{name},<object id or UPN>' to --map-identities")


def _bits(octal: str) -> tuple[str, str, str]:
    digits = (octal or "0").strip()[-3:].rjust(3, "0")
    return tuple("".join("rwx"[i] if int(d) & (4 >> i) else "-" for i in range(3))
                 for d in digits)  # type: ignore[return-value]


def gen2_access(status: Any, chosen: frozenset[str], identities: IdentityMap,
                is_dir: bool) -> PathAccess:
    """The Gen2 access of a path from its source ``GETACLSTATUS`` (owner, group,
    permission, entries), for the parts ``chosen``."""
    owner = identities.map("user", status.owner) if "owner" in chosen and status.owner \
        else ""
    group = identities.map("group", status.group) if "group" in chosen and status.group \
        else ""
    user_bits, group_bits, other_bits = _bits(status.permission)
    # The sticky bit (octal 1xxx, on shared directories such as /tmp) is in no ACL entry:
    # Gen2 takes it in x-ms-permissions as the 4-digit octal.
    digits = (status.permission or "0").strip().rjust(4, "0")
    sticky = digits[-4:] if len(digits) <= 4 and int(digits[-4], 8) & 1 else ""
    if "acl" not in chosen:
        permissions = (sticky or user_bits + group_bits + other_bits) \
            if "permissions" in chosen else ""
        return PathAccess(owner, group, "", permissions)
    base = {"user": user_bits, "group": group_bits, "other": other_bits}
    named: list[str] = []
    defaults: list[str] = []
    mask = ""
    for raw in status.entries:
        parts = raw.split(":")
        scope_default = parts[0] == "default"
        if scope_default:
            parts = parts[1:]
        if len(parts) != 3:
            continue
        kind, name, perm = parts
        if name and kind in ("user", "group"):
            name = identities.map(kind, name)
        entry = f"{kind}:{name}:{perm}"
        if scope_default:
            if is_dir:
                defaults.append("default:" + entry)
        elif kind == "mask":
            mask = perm
        elif not name and kind in base:
            if kind == "group":
                # HDFS lists the owning group's own entry when the ACL is extended; the
                # permission's group bits are then the mask.
                mask = mask or group_bits
            base[kind] = perm
        else:
            named.append(entry)
    entries = [f"user::{base['user']}", *[e for e in named if e.startswith("user:")],
               f"group::{base['group']}", *[e for e in named if e.startswith("group:")]]
    if named:
        entries.append(f"mask::{mask or group_bits}")
    entries.append(f"other::{base['other']}")
    # With a sticky bit the permissions are set too, after the ACL (the same bits, and t).
    return PathAccess(owner, group, ",".join(entries + defaults), sticky)


#: Directories an AccessKeeper remembers as done (see AccessKeeper._dirs).
RECENT_DIRS = 4096


class AccessKeeper:
    """Sets access on the copies of one pipeline's objects and their parent directories."""

    def __init__(self, ctx: Any, chosen: frozenset[str], identities: IdentityMap,
                 src_base: str, dest_root: str, events: EventBus) -> None:
        self.ctx = ctx
        self.chosen = chosen
        self.identities = identities
        self.src_base = src_base
        self.dest_root = dest_root
        self.events = events
        #: Relative directories whose access is set (or recorded as failed), most recently
        #: used last, at most RECENT_DIRS: memory stays flat however many directories.  The
        #: listing is in key order, so a directory's objects come together; once passed it
        #: is only met again by objects finishing out of order, at most the pool's window
        #: (far below RECENT_DIRS) behind.
        self._dirs: OrderedDict[str, None] = OrderedDict()

    def _remember(self, folder: str) -> None:
        self._dirs[folder] = None
        if len(self._dirs) > RECENT_DIRS:
            self._dirs.popitem(last=False)

    async def access_of(self, src_key: str, is_dir: bool) -> PathAccess:
        """The Gen2 access the copy of ``src_key`` gets: read from the source and mapped
        (UnmappableError for a principal the map lacks).  Asked before the copy is written,
        so an object whose access cannot be kept is not left with the service's default."""
        ctx = self.ctx
        src = cast(AccessReader, ctx.src)
        status = await retry(lambda: src.acl_status(src_key.rstrip("/")), ctx.policy,
                             ctx.src_limit)
        return gen2_access(status, self.chosen, self.identities, is_dir)

    async def _set(self, dest_key: str, access: PathAccess) -> None:
        ctx = self.ctx
        dst = cast(DirectoryWriter, ctx.dst)
        await retry(lambda: dst.set_access(dest_key, access), ctx.policy, ctx.dst_limit)

    async def apply(self, s: ObjectInfo, dest_key: str,
                    access: PathAccess | None = None) -> None:
        """Parent directories first (their failures recorded on their own), then the object
        itself (its failure raised: the object's outcome) with ``access`` when it was
        already read (``access_of``).  A parent's destination name is cut from ``dest_key``
        (its names as written, encoded), its source name from the source key."""
        rel = s.key[len(self.src_base):]
        parts = rel.rstrip("/").split("/")[:-1]
        dest_parts = dest_key[len(self.dest_root):].rstrip("/").split("/")[:-1]
        if len(dest_parts) != len(parts):  # a renaming that changed the depth: no guessing
            dest_parts = parts
        for i in range(1, len(parts) + 1):
            folder = "/".join(parts[:i]) + "/"
            if folder in self._dirs:
                self._dirs.move_to_end(folder)
                continue
            self._remember(folder)
            try:
                await self._set(self.dest_root + "/".join(dest_parts[:i]) + "/",
                                await self.access_of(self.src_base + folder, True))
            except (UsageError, AuthError):
                raise
            except LakeshiftError as e:
                self.events.emit(ObjectDone(self.src_base + folder, 0, "failed", e.kind,
                                            str(e)))
        if s.is_dir_marker:
            self._remember(rel)
        if access is None:
            access = await self.access_of(s.key, s.is_dir_marker)
        await self._set(dest_key, access)


def check_preserve(chosen: frozenset[str], src: Any, dst: Any) -> None:
    """Refuse (UsageError) what cannot be kept, before anything is copied (``times`` is
    kept between any two stores)."""
    chosen = chosen & ACCESS
    if not chosen:
        return
    if not src.capabilities.acls:
        raise UsageError(f"--preserve {','.join(sorted(chosen))}: the source has no ACLs "
                         "to keep (adl:// and webhdfs:// sources have)")
    if not (dst.capabilities.acls and dst.capabilities.directories):
        raise UsageError(f"--preserve {','.join(sorted(chosen))}: the destination keeps no "
                         "ACLs: use an ADLS Gen2 account with a hierarchical namespace")
