"""Parse the store URLs lakeshift accepts into a picklable :class:`StoreURL`.

Accepted forms (docs/faults-and-names.md "URLs and how names map"):

* ``s3://bucket/prefix``
* ``az://container/prefix`` (account from the Azure credentials)
* ``https://ACCOUNT.blob.core.windows.net/container/prefix`` (also ``.dfs.``)
* ``https://HOST:PORT/ACCOUNT/container/prefix`` (or ``http://``): path-style, the account
  first in the path, as the emulator Azurite serves it; it names the
  endpoint the user set (``AZURE_STORAGE_BLOB_ENDPOINT``, a connection string's
  ``BlobEndpoint``), and the store refuses any other host (stores/azure/auth.py)
* ``abfss://filesystem@ACCOUNT.dfs.core.windows.net/path`` (ADLS Gen2; written through
  the blob endpoint)
* ``adl://ACCOUNT.azuredatalakestore.net/path`` (ADLS Gen1), ``webhdfs://host:port/path``
  and ``swebhdfs://host:port/path`` (Hadoop HDFS): sources read over WebHDFS
* ``file:///path`` or a plain path
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace
from typing import Literal
from urllib.parse import unquote, urlsplit

from lakeshift.errors import UsageError

Scheme = Literal["s3", "azure", "file", "adl", "webhdfs", "swebhdfs"]

_S3_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")
_AZ_CONTAINER = re.compile(r"^(?!.*--)[a-z0-9][a-z0-9\-]{1,61}[a-z0-9]$")
_AZ_ACCOUNT = re.compile(r"^[a-z0-9]{3,24}$")
#: An Azure host that names its account: ACCOUNT.blob.SUFFIX or ACCOUNT.dfs.SUFFIX.
_HOST_STYLE = re.compile(r"^[^/@]+\.(blob|dfs)\.[^/@]+$")
#: A host (name, IPv4 or [IPv6]) with an optional port, and nothing else (no user:password@).
_HOST = re.compile(r"^(\[[0-9a-f:.]+\]|[a-z0-9.\-]+)(:[0-9]{1,5})?$")


@dataclass(frozen=True, slots=True)
class StoreURL:
    """Where a store lives.  ``path`` has no leading slash; '' is the root.

    For local stores ``bucket`` is the absolute directory and ``path`` is ''.
    """

    scheme: Scheme
    bucket: str
    path: str
    account: str | None = None
    #: Service host suffix for Azure (``core.windows.net``), None for the default.
    endpoint_suffix: str | None = None
    #: The user spelled it as ADLS Gen2 (abfss:// or a .dfs. host).
    gen2: bool = False
    #: The URL or path as the user wrote it (``parse_url``'s text), for messages that
    #: name it so (``written``); not part of what the URL names.
    text: str = field(default="", compare=False, repr=False)
    #: How an Azure URL that names its account was spelled (``abfss``, ``abfs`` or
    #: ``https``), so that ``display`` spells it back the same way; not part of what the
    #: URL names (``abfss://c@a.dfs…/p`` and ``https://a.dfs…/c/p`` are one place).
    form: str = field(default="", compare=False, repr=False)
    #: A path-style Azure URL's host (and port), as written, lowercased: the account is the
    #: path's first segment (``https://127.0.0.1:10000/ACCOUNT/CONTAINER/path``).  None when
    #: the account is in the host or not named.
    host: str | None = None

    def display(self) -> str:
        """The place in a form that names the same place when given back to lakeshift
        (a message, a summary header, a job's destination)."""
        if self.scheme == "s3":
            return f"s3://{self.bucket}/{self.path}"
        if self.scheme == "azure":
            return self._azure()
        if self.scheme in ("adl", "webhdfs", "swebhdfs"):
            return f"{self.scheme}://{self.bucket}/{self.path}"
        return self.bucket

    def _azure(self) -> str:
        # No account in the URL (az://): the container first, the account from the
        # credentials.  An account in the URL stays in the host, as the user wrote it:
        # az://ACCOUNT/CONTAINER/ would read back as a container named ACCOUNT.
        if not self.account:
            return f"az://{self.bucket}/{self.path}"
        if self.host:
            return f"{self.form or 'https'}://{self.host}/{self.account}/{self.bucket}/{self.path}"
        suffix = self.endpoint_suffix or "core.windows.net"
        if self.form in ("abfs", "abfss"):
            return f"{self.form}://{self.bucket}@{self.account}.dfs.{suffix}/{self.path}"
        service = "dfs" if self.gen2 else "blob"
        return f"https://{self.account}.{service}.{suffix}/{self.bucket}/{self.path}"

    def written(self) -> str:
        """The URL as the user wrote it (else as ``display`` spells it)."""
        return self.text or self.display()


def parse_url(text: str) -> StoreURL:
    """Parse a user-supplied URL or path; raise UsageError with the accepted forms."""
    return replace(_parse(text), text=text)


def saved_destination(saved: str, typed: str | None) -> str:
    """A job's saved destination, respelled as :meth:`StoreURL.display` spells it now when
    it was saved in the form of before session 19: an Azure URL naming its account in the
    host was saved ``az://ACCOUNT/CONTAINER/path``, which reads back as a container named
    ACCOUNT.  ``typed``: one of the job's partitions' destinations, which keep the
    destination as the user typed it (``DST/``, or ``DST/BUCKET/``).  The saved one is of
    the old form only when ``typed`` names that account in its host and that container
    (an ``az://`` destination was saved ``az://CONTAINER/path``, and its partitions say
    ``az://`` too); then it is ``typed``'s place (its account, host suffix and spelling)
    with the saved path.  Anything else comes back as it is: an ADF job's partitions were
    given the saved destination itself, so nothing tells its old form there."""
    if not saved.startswith("az://") or not typed:
        return saved
    try:
        old, named = parse_url(saved), parse_url(typed)
    except UsageError:
        return saved
    if named.scheme != "azure" or not named.account or old.bucket != named.account:
        return saved
    container, _, path = old.path.partition("/")
    if container != named.bucket:
        return saved
    return replace(named, path=path, text="").display()


def _parse(text: str) -> StoreURL:
    if not text:
        raise UsageError("empty URL: give s3://bucket/prefix, az://container/path, "
                         "abfss://fs@account.dfs.core.windows.net/path or a local path")
    if "://" not in text:
        m = re.match(r"^([A-Za-z][A-Za-z0-9+.-]+):", text)
        if m:
            raise UsageError(f"malformed URL {text!r}: a scheme needs '://' (for example "
                             f"{m.group(1).lower()}://bucket/prefix); use ./{text} for a local "
                             "path")
        return _local(text)
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if parts.query or parts.fragment:
        raise UsageError(f"URL {_safe(text)!r} has a query string: put SAS tokens in "
                         "AZURE_STORAGE_SAS_TOKEN, not in the URL")
    if scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise UsageError(f"file URL {text!r} names a host: use file:///absolute/path")
        return _local(unquote(parts.path))
    if scheme == "s3":
        bucket = parts.netloc
        if not _S3_BUCKET.match(bucket):
            raise UsageError(f"invalid S3 bucket name {bucket!r} in {text!r}: 3-63 lowercase "
                             "letters, digits, dots and hyphens")
        return StoreURL("s3", bucket, _path(parts.path))
    if scheme == "az":
        return StoreURL("azure", _container(parts.netloc, text), _path(parts.path))
    if scheme in ("abfs", "abfss"):
        fs, at, host = parts.netloc.partition("@")
        if not at or not host:
            raise UsageError(f"invalid ADLS Gen2 URL {text!r}: expected "
                             "abfss://FILESYSTEM@ACCOUNT.dfs.core.windows.net/path")
        account, suffix = _azure_host(host, text)
        return StoreURL("azure", _container(fs, text), _path(parts.path), account, suffix, True,
                        form=scheme)
    if scheme in ("https", "http") and not _HOST_STYLE.match(parts.netloc.lower()):
        return _path_style(scheme, parts.netloc.lower(), parts.path, text)
    if scheme == "http":
        raise UsageError(f"{text!r}: Azure's hosts are reached over HTTPS only: use "
                         f"https://{text.split('://', 1)[1]}")
    if scheme == "https":
        account, suffix = _azure_host(parts.netloc, text)
        container, _, rest = parts.path.lstrip("/").partition("/")
        return StoreURL("azure", _container(container, text), _path(rest), account, suffix,
                        ".dfs." in parts.netloc.lower(), form="https")
    if scheme in ("adl", "webhdfs", "swebhdfs"):
        return _webhdfs(scheme, parts.netloc.lower(), parts.path, text)
    raise UsageError(f"unknown URL scheme {scheme!r} in {text!r}: use s3://, az://, abfss://, "
                     "https://ACCOUNT.blob.core.windows.net/..., adl://, webhdfs://, file:// "
                     "or a local path")


def _path_style(scheme: str, host: str, path: str, text: str) -> StoreURL:
    """``https://HOST[:PORT]/ACCOUNT/CONTAINER/path``: the account in the path, as the emulator
    Azurite addresses one.  Which host is allowed is the store's to say (it must be
    the endpoint the user set): here only the form."""
    if "@" in host:
        raise UsageError(f"{scheme}:// URL names a user or password before its host: leave "
                         "them out (credentials go in AZURE_STORAGE_CONNECTION_STRING and "
                         "the other variables, never in a URL)")
    account, _, rest = path.lstrip("/").partition("/")
    if not _HOST.match(host) or not _AZ_ACCOUNT.match(account):
        raise UsageError(f"invalid Azure host {host!r} in {text!r}: expected "
                         "ACCOUNT.blob.core.windows.net or ACCOUNT.dfs.core.windows.net, or "
                         "the host of the endpoint you set with the account first in the "
                         "path (https://127.0.0.1:10000/ACCOUNT/CONTAINER/path)")
    container, _, rest = rest.partition("/")
    return StoreURL("azure", _container(container, text), _path(rest), account, form=scheme,
                    host=host)


def _webhdfs(scheme: str, host: str, path: str, text: str) -> StoreURL:
    """WebHDFS sources: ``bucket`` is the host (with its port), ``account`` Gen1's account."""
    if scheme == "adl":
        m = re.match(r"^([a-z0-9]{3,24})\.azuredatalakestore\.[a-z0-9.]+$", host)
        if not m:
            raise UsageError(f"invalid ADLS Gen1 URL {text!r}: expected "
                             "adl://ACCOUNT.azuredatalakestore.net/path")
        return StoreURL("adl", host, _path(path), m.group(1))
    if not re.match(r"^[a-z0-9.\-]+(:[0-9]{1,5})?$", host):
        raise UsageError(f"invalid WebHDFS URL {text!r}: expected {scheme}://NAMENODE:PORT/path")
    return StoreURL("swebhdfs" if scheme == "swebhdfs" else "webhdfs", host, _path(path))


def _safe(text: str) -> str:
    return text.split("?", 1)[0] + "?…"


def _local(path: str) -> StoreURL:
    return StoreURL("file", os.path.abspath(os.path.expanduser(path)), "")


def _path(path: str) -> str:
    return unquote(path).lstrip("/")


def _container(name: str, text: str) -> str:
    if not _AZ_CONTAINER.match(name):
        raise UsageError(f"invalid container/filesystem name {name!r} in {text!r}: 3-63 "
                         "lowercase letters, digits and single hyphens")
    return name


def _azure_host(host: str, text: str) -> tuple[str, str]:
    host = host.lower()
    m = re.match(r"^([a-z0-9]+)\.(blob|dfs)\.(.+)$", host)
    if not m or not _AZ_ACCOUNT.match(m.group(1)):
        raise UsageError(f"invalid Azure host {host!r} in {text!r}: expected "
                         "ACCOUNT.blob.core.windows.net or ACCOUNT.dfs.core.windows.net")
    return m.group(1), m.group(3)
