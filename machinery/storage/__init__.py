"""Storage backends behind one interface (:class:`machinery.storage.base.Storage`)."""

from __future__ import annotations

from urllib.parse import urlparse

from machinery.errors import MachineryError
from machinery.storage.base import Storage


def open_storage(url: str) -> Storage:
    """Open the backend a ``MACHINERY_DATABASE_URL`` names and bring its schema up to date.

    ``sqlite:///relative.db``, ``sqlite:////absolute.db``, ``memory://``, ``postgresql://...``,
    ``mongodb://...``.
    """
    scheme = urlparse(url).scheme
    storage: Storage
    if scheme == "sqlite":
        from machinery.storage.sqlite import SQLiteStorage

        path = url[len("sqlite:///") :] if url.startswith("sqlite:///") else url[len("sqlite://") :]
        storage = SQLiteStorage(path or "machinery.db")
    elif scheme == "memory":
        from machinery.storage.memory import MemoryStorage

        storage = MemoryStorage()
    else:
        raise MachineryError(f"unsupported MACHINERY_DATABASE_URL scheme {scheme!r} (use sqlite:// or memory://)")
    storage.migrate()
    return storage
