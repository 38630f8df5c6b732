"""The errors framescore raises on bad input.

The command line turns every :class:`FramescoreError` into one line on stderr and exit code 2;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class FramescoreError(Exception):
    """Base class: a problem with the user's input, files or environment, not a bug."""


class MediaError(FramescoreError):
    """A video or image that is missing, unreadable, truncated or has nothing to decode."""


class WeightsError(FramescoreError):
    """Model weights that are missing, corrupt, or do not fit the model."""


class OutputError(FramescoreError):
    """An output that exists already (without --force) or cannot be written."""


class UsageError(FramescoreError):
    """Options that do not make sense together, or an unknown model name."""


class DataError(FramescoreError):
    """A dataset folder or label file that cannot be used for training or evaluation."""
