"""Exceptions raised by rr_zoo. Each message names the problem and the fix."""

from __future__ import annotations


class RRZooError(Exception):
    """Base class of every rr_zoo error."""


class UnknownModelError(RRZooError, KeyError):
    """A model name that is not a zoo entry."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class UnknownArchitectureError(RRZooError, KeyError):
    """An architecture name that is not registered."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class UnpublishedWeightsError(RRZooError, RuntimeError):
    """``pretrained=True`` for an entry that has no published weights yet."""


class WeightsHashError(RRZooError, RuntimeError):
    """A weight file whose sha256 or size differs from the manifest."""


class WeightsNotFoundError(RRZooError, FileNotFoundError):
    """A weight file that cannot be found locally or on the Hub."""


class InputShapeError(RRZooError, ValueError):
    """An input tensor whose shape the backbone cannot take."""


class ManifestError(RRZooError, ValueError):
    """``weights_manifest.json`` does not follow the schema."""


class ReleaseChangeError(RRZooError, ValueError):
    """An attempt to change a published release (its files, Hub revision or a metric it has): releases are immutable."""


class CheckpointFormatError(RRZooError, ValueError):
    """A checkpoint file that is not in the expected layout."""
