"""assetfiles' client: mirror, download and upload the files of ExoSense assets and EnOS devices.

The public surface, importable from here::

    from assetfiles.client import Client, SyncOptions, sync

- :class:`Client`: a typed ExoSense API client (assets, listings, URLs, downloads, uploads,
  syncs) over one connection pool; :func:`sync` and :func:`enos_download` run a whole sync
  in one call and return a :class:`Report`.
- :class:`Listener`: the protocol for progress (``event`` and ``progress``); events are
  :class:`Event` of a :class:`Kind`.
- :class:`Source`: the interface a sync reads from, with :class:`ExoSenseSource` and
  :class:`EnosSource` behind it; :meth:`Client.watch` keeps a mirror current.
- The outcomes every call classifies failures into: :class:`Fatal`, :class:`Failed`,
  :class:`Gone`, :class:`Refused`, :class:`Retryable`; one :class:`RetryPolicy` for all.

See docs/library.md for a tour.
"""

from assetfiles.client.api import AssetInfo, Client, NoListener, enos_download, run_sync, sync
from assetfiles.client.enos import EnosClient, EnosOwner, EnosSource
from assetfiles.client.errors import Failed, Fatal, Gone, Refused, Retryable, SyncError
from assetfiles.client.events import Event, Kind, Listener, Report
from assetfiles.client.exosense import ExoSenseSource
from assetfiles.client.lock import FolderBusy
from assetfiles.client.plan import Filters
from assetfiles.client.remote import Origin, RemoteFile, Target
from assetfiles.client.responses import Fetched
from assetfiles.client.retry import RetryPolicy
from assetfiles.client.source import Listing, Source
from assetfiles.client.sync import Layout, SyncOptions
from assetfiles.client.upload import UploadResult
from assetfiles.client.watch import WatchOptions

__all__ = [
    "AssetInfo",
    "Client",
    "EnosClient",
    "EnosOwner",
    "EnosSource",
    "Event",
    "ExoSenseSource",
    "Failed",
    "Fatal",
    "Fetched",
    "Filters",
    "FolderBusy",
    "Gone",
    "Kind",
    "Layout",
    "Listener",
    "Listing",
    "NoListener",
    "Origin",
    "Refused",
    "RemoteFile",
    "Report",
    "RetryPolicy",
    "Retryable",
    "Source",
    "SyncError",
    "SyncOptions",
    "Target",
    "UploadResult",
    "WatchOptions",
    "enos_download",
    "run_sync",
    "sync",
]
