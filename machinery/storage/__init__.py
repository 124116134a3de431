"""Storage backends behind one interface (:class:`machinery.storage.base.Storage`)."""

from __future__ import annotations

import os
from urllib.parse import urlparse

from machinery.errors import MachineryError
from machinery.storage.base import Storage


def open_storage(url: str, *, pool_min_size: int | None = None, pool_max_size: int | None = None) -> Storage:
    """Open the backend a ``MACHINERY_DATABASE_URL`` names and bring its schema up to date.

    ``sqlite:///relative.db``, ``sqlite:////absolute.db``, ``memory://``, ``postgresql://...``
    (or ``postgres://``), ``mongodb://host/database`` (or ``mongodb+srv://``; database ``machinery`` when
    the URL names none), ``mongomock://`` (an in-memory imitation, for tests and demos). The PostgreSQL
    pool sizes default to ``MACHINERY_PG_POOL_MIN`` and ``MACHINERY_PG_POOL_MAX``.
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
    elif scheme in ("postgresql", "postgres"):
        from machinery.storage.postgres import PostgresStorage

        storage = PostgresStorage(
            url,
            pool_min_size=pool_min_size or int(os.environ.get("MACHINERY_PG_POOL_MIN", "1")),
            pool_max_size=pool_max_size or int(os.environ.get("MACHINERY_PG_POOL_MAX", "10")),
        )
    elif scheme in ("mongodb", "mongodb+srv", "mongomock"):
        from machinery.storage.mongo import MongoStorage

        storage = MongoStorage(url)
    else:
        raise MachineryError(
            f"unsupported MACHINERY_DATABASE_URL scheme {scheme!r} "
            "(use sqlite://, memory://, postgresql:// or mongodb://)"
        )
    try:
        storage.migrate()
    except BaseException:
        storage.close()
        raise
    return storage
