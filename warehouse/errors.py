"""Domain exceptions of the storage layer; the CLI maps them to exit codes."""


class WarehouseError(Exception):
    """Base of every error the warehouse raises on purpose."""


class VersionNotFound(WarehouseError):
    """A version id that the warehouse does not hold."""


class WarehouseLocked(WarehouseError):
    """Another writer holds the warehouse."""


class MixedModels(WarehouseError):
    """A version would hold vectors of more than one model."""


class NoActiveVersion(WarehouseError):
    """The warehouse has no active version yet (nothing ingested)."""


class VersionExpired(WarehouseError):
    """A version whose data `gc` removed: its metadata remains, its rows do not."""


class QueryRefused(WarehouseError):
    """A statement given to `sql` that the sandbox does not run (not one SELECT over the views)."""


class IndexMismatch(WarehouseError):
    """An index file does not belong to the version it is loaded for (or is missing)."""


class VersionRejected(WarehouseError):
    """A version the quality gate rejected, asked to become active without force."""
