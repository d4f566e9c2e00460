"""The exceptions of ssc-common: one place, one line each, written for the operator on shift."""

from __future__ import annotations


class SSCError(Exception):
    """Base of every error the pipelines report to an operator.

    ``str(error)`` is one line that names the thing (file, URI, database) and the cause;
    the CLI prints exactly that line and exits non-zero.
    """

    exit_code: int = 1

    def __init__(self, subject: str, problem: str) -> None:
        self.subject = subject
        self.problem = problem
        super().__init__(f"{subject}: {problem}")


class ConfigurationError(SSCError):
    """A setting is missing or malformed."""


class StorageError(SSCError):
    """A storage operation failed (the object URI is the subject)."""


class StorageUnreachable(StorageError):
    """The storage endpoint cannot be reached or refuses the credentials."""


class ObjectNotFound(StorageError):
    """The object does not exist in storage."""


class DatabaseError(SSCError):
    """The processing database refused an operation."""


class DatabaseUnreachable(DatabaseError):
    """The processing database cannot be reached."""


class InputError(SSCError):
    """An input file is corrupt, of the wrong type, or fails validation."""
