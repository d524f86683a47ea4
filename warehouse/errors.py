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


class ReadOnlyQuery(WarehouseError):
    """A statement given to `sql` would write."""
