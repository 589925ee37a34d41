"""One place for the app's errors. Messages name the fix; the UI turns them into gr.Error."""

from __future__ import annotations


class AppError(Exception):
    """Base class: its message is shown to the user as is."""


class ArtifactUnavailable(AppError, FileNotFoundError):
    """The artifact is not cached and cannot be fetched now."""


class ArtifactIncomplete(AppError, FileNotFoundError):
    """A folder or file is there but lacks what its engine needs."""


class NoUsableArtifact(AppError, RuntimeError):
    """The policy found nothing that can run here."""


class EngineLoadError(AppError, RuntimeError):
    """An engine could not load or compile an artifact on a device."""


class PromptTooLong(AppError, ValueError):
    """A single message does not fit the model's context window."""


class EngineBusy(AppError, RuntimeError):
    """The engine serves one generation at a time."""
