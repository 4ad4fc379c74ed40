"""The DFS client reads the service's error code from the SDK's errors: the code decides
whether a refused Entra ID token is renewed (403 ``AuthenticationFailed``) and whether a
directory delete met a folder that is not empty (409 ``DirectoryNotEmpty``)."""
from __future__ import annotations

from types import SimpleNamespace

from azure.core.exceptions import HttpResponseError
from azure.storage.filedatalake._shared.models import StorageErrorCode

from lakeshift.stores.azure.dfs import _error_code


def test_the_code_of_an_error_the_sdk_processed_is_its_value_not_the_enums_name() -> None:
    e = HttpResponseError(message="refused")
    e.error_code = StorageErrorCode("AuthenticationFailed")  # as process_storage_error sets it
    assert _error_code(e) == "AuthenticationFailed"


def test_an_error_of_the_generated_client_gives_its_code_from_the_response_header() -> None:
    e = HttpResponseError(message="not empty")
    e.response = SimpleNamespace(headers={"x-ms-error-code": "DirectoryNotEmpty"})  # type: ignore[assignment]
    assert _error_code(e) == "DirectoryNotEmpty"
    assert _error_code(HttpResponseError(message="none")) == ""
