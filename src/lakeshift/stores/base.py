"""The store protocol every backend implements, and its capabilities as data."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from lakeshift.model import Data, ObjectInfo, ObjectProps, ReadResult
from lakeshift.urls import StoreURL


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a backend can do.  The engine branches on these, never on the class."""

    #: Listing is in ascending key order and can start after a given key.
    list_start_after: bool
    #: A listing gives the content MD5 of (some) objects without reading them.
    content_md5: bool
    #: Real directories (ADLS Gen2 with hierarchical namespace, local disk).
    hierarchical: bool
    #: POSIX-style ACLs, owner and group.
    acls: bool
    #: Can write an object from a URL the service reads itself.
    copy_from_url: bool
    #: Blocks can be staged in any order, in parallel, and committed at the end.
    block_upload: bool
    #: Largest block (or part) the service accepts, in bytes.
    max_block_size: int
    #: The ETag of a single-shot object is its MD5.
    etag_is_md5: bool
    #: A listing carries user metadata (so compare needs no HEAD per object).
    metadata_in_listing: bool
    #: ``put_stream`` works: a whole object written from a stream and created only if its
    #: bytes have the given MD5 (checked by the service, or by the store as it writes).
    stream_put: bool = False
    #: ``put`` itself refuses a body whose bytes do not have the MD5 it is given (Azure: the
    #: service checks Content-MD5), so a source's own MD5 can be passed without hashing.
    put_checks_md5: bool = False
    #: Most blocks (or parts) one object may have; 0 for no limit.
    max_blocks: int = 0
    #: A staged block needs its own MD5, which the service checks: nothing else protects it
    #: in transit (plain HTTP).  Over TLS, and on stores that ignore it, it is not computed.
    block_md5: bool = False
    #: A staged block can carry its CRC-64/NVME instead, which the service checks as it
    #: checks the MD5 (Azure: ``x-ms-content-crc64`` on Put Block): where ``block_md5`` asks
    #: for a transit check, a block that needs no MD5 for anything else gets this one
    #: (``CRC64BlockUpload.stage_crc64``), ten times cheaper to compute.
    block_crc64: bool = False
    #: ``source_checksums(key, etag)`` answers: the checksum the service keeps for an
    #: object besides its ETag (S3 additional checksums), and its part layout.
    source_checksums: bool = False
    #: ``make_directory`` creates a real (empty) directory; ``set_access`` / ``get_access``
    #: keep owner, group and ACLs when ``acls`` is true too (ADLS Gen2 over its DFS endpoint).
    directories: bool = False
    #: ``read_url(key, expires_in)`` mints a URL through which another service can GET an
    #: object (S3: a presigned GET; Azure: a blob SAS), for server-side copies.
    read_url: bool = False
    #: Largest object one ``put_from_url`` writes (Azure: Put Blob From URL, 5000 MiB);
    #: a larger one is staged block by block from the URL (``URLBlockUpload``) and
    #: committed.  Only with ``copy_from_url``.
    from_url_max: int = 0
    #: Writes land on a disk this process writes itself (local disk): no service receives,
    #: checks or hashes them.  A copy that nothing the source keeps proves is then named
    #: ``written-md5`` (lakeshift's MD5 of the bytes it wrote, recorded with the file), not
    #: ``service-md5`` (engine/transfer_proofs.py ``unchecked_proof``).
    written_here: bool = False
    #: Reads come from a disk this process opens itself (local disk): opening an object costs
    #: no request, so a dry run opens each object it would copy, reading no byte
    #: (``read(key, 0, 0)``), and says what the copy could not read (a file this user may
    #: not read: ``forbidden``) as the copy would record it (engine/pipeline_action.py
    #: ``skipped_unread``).
    reads_here: bool = False
    #: A folder is a zero-byte object whose key ends in ``/`` (``d/``: the S3 console's and
    #: the AWS CLI's folder, listed as a folder marker), so ``transfer.copy_marker`` writes
    #: one of that name; a flat store without it gets an ``hdi_isfolder`` blob named ``d``.
    slash_folders: bool = False
    #: A listing shows every folder, empty or not (Azure: a Gen2 directory is a folder blob
    #: in List Blobs), so a folder it does not list is not there and nothing is asked
    #: (``is_folder``); local disk lists only empty directories.
    lists_folders: bool = False


@dataclass(frozen=True, slots=True)
class SourceChecksum:
    """What a store keeps about an object's bytes beyond its ETag, to prove a read of it.

    ``algorithm`` is one of crc32, crc32c, crc64nvme, sha1, sha256 (None: the object has
    none); ``value`` is the service's base64 text without any ``-N`` suffix; ``composite``
    says it is the checksum of the parts' checksums (S3 COMPOSITE), not of the whole
    object.  ``part_size``/``parts`` describe a multipart object (part 1's size, the part
    count; every part but the last has part 1's size, as SDK uploads do).  ``opaque_etag``:
    the object is encrypted with SSE-KMS or SSE-C, so its ETag is no digest of its bytes
    (a multipart one cannot be rebuilt from the part MD5s)."""

    algorithm: str | None = None
    value: str | None = None
    composite: bool = False
    part_size: int | None = None
    parts: int | None = None
    opaque_etag: bool = False


@dataclass(frozen=True, slots=True)
class PathAccess:
    """Owner, group and ACL of a path as a hierarchical destination sets them (ADLS Gen2
    Path - Update): ``acl`` holds the access entries then the ``default:`` ones,
    comma-separated; ``permissions`` (``rwxr-x---``) only when no ACL is given (the two are
    mutually exclusive).  Empty values are left as they are."""

    owner: str = ""
    group: str = ""
    acl: str = ""
    permissions: str = ""


@dataclass(frozen=True, slots=True)
class StoreOptions:
    """How to reach stores, beyond the URL.  Picklable: no secrets, no clients."""

    s3_endpoint: str | None = None
    s3_region: str | None = None
    aws_profile: str | None = None
    #: Let the AWS chain ask the instance-metadata service (off unless asked for).
    aws_imds: bool = False
    s3_anonymous: bool = False
    #: Azure credential source: auto (documented precedence), key, sas, connection-string,
    #: service-principal, cli, managed-identity.
    azure_auth: str = "auto"
    #: Allow plain HTTP to a host that is not loopback.
    allow_http: bool = False
    #: "requester": every S3 request carries ``x-amz-request-payer: requester`` (the caller
    #: pays a requester-pays bucket's requests and egress); None: not sent.
    s3_request_payer: str | None = None


@dataclass(frozen=True, slots=True)
class StoreConfig:
    """A picklable description of a store; the live client is built where it is used."""

    url: StoreURL
    options: StoreOptions = StoreOptions()
    #: A local source only: the copy's local destination folder, which its walk never
    #: enters — an entry leading there or inside it (a symlink, a mount) is one entry,
    #: never read, skipped as ``destination-folder`` (set by plan/source.py
    #: ``source_avoiding_destination``).
    destination_folder: str | None = None


@dataclass(frozen=True, slots=True)
class Page:
    """One listing request's answer."""

    objects: Sequence[ObjectInfo]
    #: With a delimiter: the child folder prefixes (each ending in it), in key order.
    folders: Sequence[str] = ()
    #: Where the next page starts (the service's continuation token or marker); None on the
    #: last page.  A page may be empty and still have a token.
    token: str | None = None


class Lister(Protocol):
    #: Objects asked for per listing request (the service's maximum by default).
    page_size: int

    async def list_page(self, prefix: str, token: str | None = None,
                        start_after: str | None = None, delimiter: str | None = None) -> Page:
        """One listing request: objects whose key starts with ``prefix`` (a string prefix),
        in ascending key order, after ``start_after`` when given (pass the same one with
        every token), continuing at ``token``.  With ``delimiter`` ("/"), the child folders
        too and the objects directly under ``prefix`` only.  Errors come from the error tree:
        a reset or a truncated body is a TransientError, so the engine can retry the page
        (engine/listing.py pages through this under retry and the endpoint's limiter)."""
        ...


class Reader(Protocol):
    async def read(self, key: str, start: int | None = None, end: int | None = None,
                   if_match: str | None = None) -> ReadResult:
        """Bytes ``[start, end)`` of ``key`` (the whole object when both are None).
        With ``if_match`` the read fails with ChangedError when the ETag moved."""
        ...

    async def open_range(self, key: str, start: int, end: int,
                         if_match: str | None = None) -> RangeStream:
        """Start streaming bytes ``[start, end)`` of ``key`` (one ranged GET)."""
        ...


class ChecksumSource(Protocol):
    async def source_checksums(self, key: str, etag: str | None) -> SourceChecksum:
        """The object's additional checksum and part layout (two HEADs on S3; the version
        with ETag ``etag``).  Only when ``capabilities.source_checksums``."""
        ...


class URLSource(Protocol):
    async def read_url(self, key: str, expires_in: int) -> str | None:
        """A URL another service can GET ``key`` through for ``expires_in`` seconds, minted
        now (one per request, so none expires during a copy); None when this store's
        credential cannot mint one.  Only when ``capabilities.read_url``.  The URL is a
        secret: it never goes into a message."""
        ...


class URLWriter(Protocol):
    async def put_from_url(self, key: str, url: str, size: int, props: ObjectProps,
                           md5: bytes, same_service: bool, source_etag: str | None) -> None:
        """Write ``key`` from the ``size`` bytes the service itself reads at ``url``, created
        only if they have MD5 ``md5`` (the service checks it).  ``same_service``: the URL is
        this service's own (a blob SAS), so it may copy the source's properties itself, and
        ``source_etag`` pins the version read.  ServerCopyUnavailable when the service
        cannot read the URL or does not do the request.  Only when
        ``capabilities.copy_from_url``."""
        ...


class URLBlockUpload(Protocol):
    """A block upload (``Writer.start_blocks``) whose blocks the service reads itself."""

    async def stage_from_url(self, index: int, url: str, start: int, end: int,
                             source_etag: str | None) -> None:
        """Stage bytes ``start`` to ``end`` (exclusive) of what ``url`` serves as block
        ``index``; ``source_etag`` (the same service only) pins the version read.
        ServerCopyUnavailable as for ``URLWriter.put_from_url``."""
        ...

    async def commit(self, order: list[int], md5: bytes | None) -> None: ...

    async def prove(self, md5: bytes) -> None:
        """After ``commit(order, None)`` and a read-back that proved the copy: store ``md5``
        (and the record of the source's version) on the committed object."""
        ...

    async def abort(self) -> None: ...


class Pieces:
    """A block's bytes as the buffers they arrived in (socket reads), never joined: hashed
    piece by piece (CRC64 and CRC32 chain, MD5 and SHA update) and sent as one body of
    several buffers (``wire``), so no byte of the block is copied in Python.  ``len`` is
    its size in bytes."""

    __slots__ = ("parts", "size")

    def __init__(self, parts: Sequence[Data]) -> None:
        self.parts: tuple[Data, ...] = tuple(parts)
        self.size = sum(map(len, self.parts))

    def __len__(self) -> int:
        return self.size

    def __bytes__(self) -> bytes:
        return b"".join(self.parts)


#: A chunk of a ranged read: one buffer, or (``PiecesStream.pieces``) several.
Chunk = Data | Pieces


def buffers(data: Chunk) -> tuple[Data, ...]:
    """The buffers of a chunk, in order."""
    return data.parts if isinstance(data, Pieces) else (data,)


class RangeStream(Protocol):
    """An open ranged read: properties from the response, then the bytes in chunks."""

    props: ObjectProps
    size: int
    etag: str | None

    def chunks(self, min_size: int) -> AsyncIterator[bytes]:
        """The bytes in order, in chunks of at least ``min_size`` (but the last)."""
        ...

    def close(self) -> None:
        """Done with it, read or not: its connection is freed (reading to the end frees it
        too; a stream dropped unread must be closed, or its connection stays taken)."""
        ...


@runtime_checkable
class PiecesStream(Protocol):
    """A ``RangeStream`` that can hand its bytes on as the pieces they arrived in."""

    def pieces(self, min_size: int) -> AsyncIterator[Pieces]:
        """As ``chunks``, each chunk the list of buffers it arrived in (never joined)."""
        ...


class BlockUpload(Protocol):
    """Blocks of one object.  ``index`` names a block (any non-negative int below 10**10),
    ``offset`` is where its bytes go; blocks may differ in size; ``md5`` is the block's MD5
    when ``capabilities.block_md5`` asks for it.  ``commit`` takes the indices in object
    order and the whole object's MD5; it answers False when nothing checked that the
    object the service stored holds the bytes staged (S3 under SSE-KMS or SSE-C, whose
    ETag is no digest), else None or True (S3: the multipart ETag compared)."""

    async def stage(self, index: int, offset: int, data: Data,
                    md5: bytes | None) -> None: ...
    async def commit(self, order: list[int], md5: bytes | None) -> bool | None: ...
    async def abort(self) -> None: ...


class CRC64BlockUpload(Protocol):
    """A block upload (``Writer.start_blocks``) of a store with ``capabilities.block_crc64``."""

    async def stage_crc64(self, index: int, offset: int, data: Data, crc64: bytes) -> None:
        """``BlockUpload.stage`` with the block's CRC-64/NVME (``checksums.crc64nvme``: 8
        bytes, little-endian) in place of its MD5: the service refuses a block whose bytes
        do not have it (IntegrityError), so a block changed in transit is never staged."""
        ...


@runtime_checkable
class PiecesBlockUpload(Protocol):
    """A block upload that sends a block given as ``Pieces`` without joining it."""

    async def stage_pieces(self, index: int, offset: int, data: Pieces, md5: bytes | None,
                           crc64: bytes | None) -> None:
        """``stage`` (``md5``) or ``stage_crc64`` (``crc64``) of a block in pieces."""
        ...


class Writer(Protocol):
    async def put(self, key: str, data: Data, props: ObjectProps, md5: bytes) -> None:
        """Write a whole object in one request; the store keeps ``md5`` as its checksum
        where it can, and rejects a body damaged in transit."""
        ...

    async def start_blocks(self, key: str, size: int, block_size: int,
                           props: ObjectProps) -> BlockUpload:
        """Begin a block upload; nothing is visible under ``key`` until commit."""
        ...

    async def put_stream(self, key: str, size: int, chunks: AsyncIterator[bytes],
                         props: ObjectProps, md5: bytes | None) -> bytes | None:
        """Write ``size`` bytes from ``chunks`` as one object, created only if they have
        MD5 ``md5`` (else IntegrityError, and nothing is visible under ``key``).  With
        ``md5`` None the object is created whatever its MD5, and the MD5 the destination
        computed of what it stored is returned (None if it gives none): the caller compares
        it with its own.  An error raised by ``chunks`` propagates unchanged.  Only when
        ``capabilities.stream_put``."""
        ...


@dataclass(frozen=True, slots=True)
class BucketFacts:
    """Bucket settings a migration must know; None where unknown (no right to read them)."""

    versioned: bool | None = None
    requester_pays: bool | None = None


@dataclass(frozen=True, slots=True)
class ObjectDetails:
    """What a HEAD of one object shows beyond the listing."""

    metadata: dict[str, str]
    #: Encrypted with a customer-provided key (SSE-C): unreadable without that key.
    sse_customer: bool = False
    #: For an archived object: its restore has finished and it can be read now.
    restored: bool = False
    #: An INTELLIGENT_TIERING object in an archive access tier (S3 ``ArchiveStatus``:
    #: ARCHIVE_ACCESS, DEEP_ARCHIVE_ACCESS) and not restored: unreadable as archived ones.
    archive_status: str = ""


@runtime_checkable
class Inspector(Protocol):
    """A store that can say more about its bucket and objects than a listing does (S3)."""

    async def bucket_facts(self) -> BucketFacts: ...

    async def inspect(self, key: str) -> ObjectDetails: ...


@runtime_checkable
class TreeWalker(Protocol):
    """A store whose listing walks a directory tree (WebHDFS): one page is many requests,
    and a directory it may not enter is listed as one entry."""

    def list_requests_made(self) -> int: ...

    def refused_directory(self, key: str) -> str | None: ...


@runtime_checkable
class NamespaceAsker(Protocol):
    """A destination whose namespace (hierarchical or flat) is a property of the account,
    asked of the service (Azure: Get Account Information), writing nothing."""

    async def ask_namespace(self) -> bool: ...


@runtime_checkable
class FolderEntries(Protocol):
    """A store whose listing of a folder ``d/`` does not name that folder itself (Azure:
    List Blobs of ``d/`` does not show the folder blob ``d``; S3 lists its ``d/`` key, local
    disk and WebHDFS never list the folder they walk).  The pipeline's listings ask it for
    the folder's own entry (engine/pipeline_listings.py)."""

    async def folder_entry(self, prefix: str) -> ObjectInfo | None: ...


class DirectoryWriter(Protocol):
    """Stores with ``capabilities.directories`` (ADLS Gen2 over its DFS endpoint)."""

    async def make_directory(self, key: str) -> None:
        """Create the directory ``key`` (and its parents); one that exists is fine."""
        ...

    async def remove_directory(self, key: str, recursive: bool = False) -> None:
        """Remove the directory ``key`` that lakeshift made and emptied; one that is gone is
        fine, and one that holds anything is left as it is (something else wrote into it: a
        run into a folder tune or scan made).  ``recursive``: with everything below it, for a
        folder whose every path is lakeshift's own (tune's scratch)."""
        ...

    async def set_access(self, key: str, access: PathAccess) -> None:
        """Set owner, group and ACL (or permission bits) of a file or directory."""
        ...

    async def get_access(self, key: str) -> PathAccess:
        ...


class AccessReader(Protocol):
    """Sources with ``capabilities.acls``: a path's owner, group, permission bits (octal
    text) and ACL entries (``user:alice:rwx``, ``default:group::r-x``), as WebHDFS's
    ``GETACLSTATUS`` gives them."""

    async def acl_status(self, key: str) -> Any:
        ...


class Store(Lister, Reader, Writer, Protocol):
    capabilities: Capabilities
    url: StoreURL

    async def prepare_destination(self) -> None:
        """Create the container/bucket/directory if missing (destinations only)."""
        ...

    async def check_source(self) -> None:
        """Raise UsageError when the bucket/container/directory does not exist."""
        ...

    async def is_folder(self, path: str) -> bool:
        """True when some object's key starts with ``path + '/'``."""
        ...

    async def exists(self, key: str) -> ObjectInfo | None: ...

    async def server_time(self) -> datetime | None:
        """The service's clock (from a response Date header); None for local disk."""
        ...

    async def delete(self, key: str) -> None: ...

    async def close(self) -> None: ...
