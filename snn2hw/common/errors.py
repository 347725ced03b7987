"""Error types shown to users as one-line messages by the CLI.

Every error names the thing at fault (file, layer, node, key) and what to do about it.
"""

from __future__ import annotations


class Snn2hwError(Exception):
    """Base class: the CLI prints ``str(err)`` on one line and exits non-zero."""


class ConfigError(Snn2hwError):
    """A configuration file has an unknown key, a wrong type or an illegal value."""


class CheckpointError(Snn2hwError):
    """A checkpoint is corrupt, untrusted or describes an unknown architecture."""


class DatasetError(Snn2hwError):
    """A dataset is unknown or its files are missing/corrupt."""


class TrainingError(Snn2hwError):
    """Training cannot continue (e.g. NaN loss)."""


class GraphError(Snn2hwError):
    """A NIR or quantized graph is malformed, unsupported or inconsistent."""


class QuantizationError(Snn2hwError):
    """A layer cannot be represented in the target's number formats."""


class TargetError(Snn2hwError):
    """A target description is unknown or malformed."""


class ResourceError(Snn2hwError):
    """A model does not fit the target's resources."""


class MissingDependencyError(Snn2hwError, ImportError):
    """An optional part (lava-nc, onnxruntime, a CUDA GPU) is missing; the message names it
    and the command that installs it."""
