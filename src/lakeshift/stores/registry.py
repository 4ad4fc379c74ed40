"""URL scheme → store class, imported lazily (a local copy never imports the cloud SDKs)."""

from __future__ import annotations

from typing import cast

from lakeshift.stores.base import Store, StoreConfig


def open_store(config: StoreConfig) -> Store:
    scheme = config.url.scheme
    if scheme == "s3":
        from lakeshift.stores.s3.store import S3Store

        return cast(Store, S3Store(config))
    if scheme == "azure":
        from lakeshift.stores.azure.store import AzureBlobStore

        return cast(Store, AzureBlobStore(config))
    if scheme in ("adl", "webhdfs", "swebhdfs"):
        from lakeshift.stores.webhdfs.store import WebHdfsStore

        return cast(Store, WebHdfsStore(config))
    from lakeshift.stores.local.store import LocalStore

    return cast(Store, LocalStore(config))
