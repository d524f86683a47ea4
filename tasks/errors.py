"""Domain exceptions of the stages. Messages name the bad value and what to do about it.

Only the CLI turns these into exit codes and one-line messages.
"""


class EmbedpipeError(Exception):
    """Base of every error embedpipe raises on purpose."""


class SourceError(EmbedpipeError):
    """A corpus source is missing, unreadable as a whole, or of an unknown format."""


class EmptyCorpus(EmbedpipeError):
    """No document survived loading and cleaning."""


class ModelError(EmbedpipeError):
    """A model cannot be loaded or does not fit the requested use."""



class OverBudget(EmbedpipeError):
    """A retrain whose estimated training time exceeds retrain.max_seconds."""


class WouldLoseDocuments(EmbedpipeError):
    """A retrain whose candidate would hold fewer documents than the active version."""
