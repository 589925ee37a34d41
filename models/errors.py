"""One place for the app's errors. Messages name the fix; the UI turns them into gr.Error or an HTTP 4xx."""

from __future__ import annotations


class AppError(Exception):
    """Base class: its message is shown to the user as is."""


class ArtifactUnavailable(AppError, FileNotFoundError):
    """The artifact is not cached and cannot be fetched now."""


class HubUnreachable(ArtifactUnavailable):
    """The network or the hub itself failed: no other download from the hub will work either."""


class NotEnoughDisk(ArtifactUnavailable):
    """Refused before the first byte: this artifact does not fit the disk (a smaller one may)."""


class ArtifactIncomplete(AppError, FileNotFoundError):
    """A folder or file is there but lacks what its engine needs."""


class NoUsableArtifact(AppError, RuntimeError):
    """The policy found nothing that can run here."""


class EngineLoadError(AppError, RuntimeError):
    """An engine could not load or compile an artifact on a device.

    `scope` says what the failure rules out: "device" (the device or its driver is missing: every
    artifact on it would fail the same way) or "artifact" (this artifact: a broken file, too little
    memory for it; a smaller artifact on the same device may still load).
    """

    def __init__(self, message: str, scope: str = "artifact"):
        super().__init__(message)
        self.scope = scope


class EngineError(AppError, RuntimeError):
    """An engine failed while answering. The message carries the engine's own words."""


class PromptTooLong(AppError, ValueError):
    """A single message does not fit the model's context window."""


class InvalidSampling(AppError, ValueError):
    """A sampling setting is out of range (temperature, top_p, max_new_tokens, seed, stop); `param` names it."""

    param: str | None = None

    def __init__(self, message: str, param: str | None = None):
        super().__init__(message)
        if param is not None:
            self.param = param


class InvalidText(AppError, ValueError):
    """Text that is not valid Unicode (a lone surrogate, which no engine can encode). `param` names the field."""

    def __init__(self, message: str, param: str):
        super().__init__(message)
        self.param = param


def check_text(name: str, value: str, param: str) -> None:
    """Raise InvalidText when `value` cannot be written as UTF-8 (JSON's \\ud83d without its pair, say)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as err:
        raise InvalidText(f"{name} is not valid Unicode text: a lone surrogate ({value[err.start]!r}) at character "
                          f"{err.start}; send text encoded as UTF-8", param) from None


class StorageError(AppError, OSError):
    """A cache folder cannot be written (read-only, full disk)."""


def storage_error(err: OSError, what: str, where: object) -> StorageError:
    """One line for a failed write: what was being written, where, and what to do."""
    import errno

    if err.errno == errno.ENOSPC:
        fix = "the disk is full: free some space (or set PHI3PC_HOME to a folder on a bigger disk) and start again"
    elif err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        fix = "the folder is not writable: fix its permissions or set PHI3PC_HOME to a writable folder"
    else:
        fix = f"{err.strerror or err}; check the folder, or set PHI3PC_HOME to another one"
    return StorageError(f"could not write {what} to {where}: {fix}")
