"""AWS credentials from the standard places, without probing instance metadata.

Precedence (botocore's order): AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY[/AWS_SESSION_TOKEN];
AWS_PROFILE (or --aws-profile) from ~/.aws/credentials and ~/.aws/config (static keys,
assume-role, SSO, credential_process); web identity (AWS_WEB_IDENTITY_TOKEN_FILE); ECS/EKS
container credentials; the EC2 instance role only with --aws-imds (LAKESHIFT_AWS_IMDS=true).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any
from urllib.parse import urlsplit

from lakeshift.errors import AuthError, UsageError
from lakeshift.redact import register_secret
from lakeshift.stores.base import StoreOptions


@dataclass(frozen=True)
class AwsSettings:
    endpoint: str | None
    region: str
    #: botocore Credentials (refreshable or not) or EnvCredentials, None when anonymous;
    #: kept out of reprs.
    credentials: Any = field(repr=False)
    #: The botocore session the credentials came from; None when they came from the
    #: environment without botocore (``env_credentials``).
    session: Any = field(repr=False)


@dataclass(frozen=True)
class FrozenCredentials:
    """What botocore's ``get_frozen_credentials()`` gives (its ReadOnlyCredentials)."""

    access_key: str
    secret_key: str = field(repr=False)
    token: str | None = field(repr=False, default=None)


class EnvCredentials:
    """Credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN, as
    botocore's EnvProvider reads them (static: no AWS_CREDENTIAL_EXPIRATION)."""

    method = "env"

    def __init__(self, frozen: FrozenCredentials) -> None:
        self._frozen = frozen

    def get_frozen_credentials(self) -> FrozenCredentials:
        return self._frozen


def env_credentials(options: StoreOptions) -> EnvCredentials | None:
    """The credentials botocore's chain gives when its first provider, the environment,
    has them whole, read without importing botocore (~0.2 s of CPU at every start); None
    whenever anything else could decide: --aws-profile (an explicit profile takes the
    environment out of botocore's chain) or AWS_PROFILE (botocore reads the profile's
    configuration, which can be refused), no key pair, or AWS_CREDENTIAL_EXPIRATION
    (refreshable).  Checked against botocore's chain in tests/unit/test_credentials.py."""
    env = os.environ
    access, secret = env.get("AWS_ACCESS_KEY_ID", ""), env.get("AWS_SECRET_ACCESS_KEY", "")
    if options.aws_profile or env.get("AWS_PROFILE") or not access or not secret or \
            env.get("AWS_CREDENTIAL_EXPIRATION"):
        return None
    token = env.get("AWS_SECURITY_TOKEN") or env.get("AWS_SESSION_TOKEN") or None
    return EnvCredentials(FrozenCredentials(access, secret, token))


def new_session(options: StoreOptions) -> Any:
    """A botocore session for ``options`` (its credential chain without instance
    metadata unless asked)."""
    import botocore.session

    session = botocore.session.Session(profile=options.aws_profile or None)
    imds = options.aws_imds or os.environ.get("LAKESHIFT_AWS_IMDS", "").lower() in ("1", "true")
    if not imds:
        session.get_component("credential_provider").remove("iam-role")
    return session


def resolve(options: StoreOptions) -> AwsSettings:
    endpoint = (options.s3_endpoint or os.environ.get("AWS_ENDPOINT_URL_S3")
                or os.environ.get("AWS_ENDPOINT_URL"))
    region = options.s3_region or os.environ.get("AWS_REGION") or \
        os.environ.get("AWS_DEFAULT_REGION")
    creds = None if options.s3_anonymous else env_credentials(options)
    if region and creds is not None:
        if endpoint:
            check_endpoint(endpoint, endpoint_source(options))
        frozen = creds.get_frozen_credentials()
        register_secret(frozen.secret_key)
        register_secret(frozen.token)
        # No session: S3Store builds one (new_session) only if a request needs botocore.
        return AwsSettings(endpoint, region, creds, None)
    return _resolve_with_botocore(options)


def endpoint_source(options: StoreOptions) -> str:
    return "--s3-endpoint" if options.s3_endpoint else \
        "AWS_ENDPOINT_URL_S3" if os.environ.get("AWS_ENDPOINT_URL_S3") else "AWS_ENDPOINT_URL"


def _resolve_with_botocore(options: StoreOptions) -> AwsSettings:
    import botocore.exceptions
    import botocore.session

    try:
        session = botocore.session.Session(profile=options.aws_profile or None)
        region = (options.s3_region or os.environ.get("AWS_REGION")
                  or os.environ.get("AWS_DEFAULT_REGION") or session.get_config_variable("region")
                  or "us-east-1")
    except botocore.exceptions.ProfileNotFound as e:
        raise UsageError(f"AWS profile {options.aws_profile!r} not found in ~/.aws/config or "
                         "~/.aws/credentials: check --aws-profile / AWS_PROFILE") from e
    endpoint = (options.s3_endpoint or os.environ.get("AWS_ENDPOINT_URL_S3")
                or os.environ.get("AWS_ENDPOINT_URL"))
    if endpoint:
        check_endpoint(endpoint, endpoint_source(options))
    if options.s3_anonymous:
        return AwsSettings(endpoint, region, None, session)
    try:
        resolver = session.get_component("credential_provider")
    except botocore.exceptions.ProfileNotFound as e:  # (AWS_PROFILE: read only here)
        raise UsageError(f"AWS profile {e.kwargs.get('profile')!r} not found in "
                         "~/.aws/config or ~/.aws/credentials: check --aws-profile / "
                         "AWS_PROFILE") from e
    imds = options.aws_imds or os.environ.get("LAKESHIFT_AWS_IMDS", "").lower() in ("1", "true")
    if not imds:
        resolver.remove("iam-role")
    try:
        creds = resolver.load_credentials()
    except botocore.exceptions.BotoCoreError as e:
        raise AuthError(f"AWS credentials could not be loaded: {e}") from e
    if creds is None:
        raise AuthError("no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
                        "or AWS_PROFILE (or --aws-profile); on EC2 pass --aws-imds to use the "
                        "instance role; --s3-anonymous for public buckets")
    frozen = creds.get_frozen_credentials()
    register_secret(frozen.secret_key)
    register_secret(frozen.token)
    return AwsSettings(endpoint, region, creds, session)


def check_endpoint(endpoint: str, source: str) -> None:
    """Refuse an endpoint that is not an http(s) URL with a host, before any request."""
    try:
        parts = urlsplit(endpoint)
        parts.port  # noqa: B018 -- raises ValueError on a port that is not a number
    except ValueError:
        parts = None
    if parts is None or parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise UsageError(f"{source} {endpoint!r} is not a URL: give it as "
                         "https://HOST[:PORT] (http:// only for loopback or with --allow-http)")


def obstore_provider(settings: AwsSettings) -> Callable[[], Any] | None:
    """A credential callback for obstore that refreshes temporary credentials."""
    creds = settings.credentials
    if creds is None:
        return None

    def provide() -> Any:
        frozen = creds.get_frozen_credentials()
        register_secret(frozen.secret_key)
        register_secret(frozen.token)
        out: dict[str, Any] = {"access_key_id": frozen.access_key,
                               "secret_access_key": frozen.secret_key}
        if frozen.token:
            out["token"] = frozen.token
        expiry = getattr(creds, "_expiry_time", None)
        # obstore accepts only datetime.timezone.utc; botocore gives dateutil's tzlocal/tzutc.
        out["expires_at"] = expiry.astimezone(UTC) if expiry is not None else None
        return out

    return provide
