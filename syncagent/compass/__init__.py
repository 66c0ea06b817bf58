"""The Compass API client: authentication, endpoints, errors, retries."""

from syncagent.compass.client import AssetUpdate, CompassClient, Download
from syncagent.compass.errors import (
    AmbiguousResult,
    AuthenticationFailed,
    CompassError,
    CompassUnreachable,
    IntegrityError,
    InvalidRequest,
    NotFound,
    PermissionDenied,
    RequestRejected,
    TransientError,
    UrlExpired,
)
from syncagent.compass.models import (
    AssetItem,
    Folder,
    FolderListing,
    NewAsset,
    Permissions,
    Proxy,
    SearchPage,
)
from syncagent.compass.retry import RetryPolicy
from syncagent.compass.sender import ProxyUnusable

__all__ = [
    "AmbiguousResult",
    "AssetItem",
    "AssetUpdate",
    "AuthenticationFailed",
    "CompassClient",
    "CompassError",
    "CompassUnreachable",
    "Download",
    "Folder",
    "FolderListing",
    "IntegrityError",
    "InvalidRequest",
    "NewAsset",
    "NotFound",
    "PermissionDenied",
    "Permissions",
    "Proxy",
    "ProxyUnusable",
    "RequestRejected",
    "RetryPolicy",
    "SearchPage",
    "TransientError",
    "UrlExpired",
]
