"""The one list of integer backends: name -> lazy loader, node kinds, install hint.

``torch-int`` (:mod:`snn2hw.backends.torch_int`), ``event`` (:mod:`snn2hw.backends.event`),
``lava`` (:mod:`snn2hw.backends.lava`, needs lava-nc) and ``onnx``
(:mod:`snn2hw.backends.onnx_runtime`, the integer ONNX model run by onnxruntime). Each is a
:class:`snn2hw.backends.base.Backend` returning :class:`snn2hw.backends.base.SimResult`.
API: :func:`names` (all, in reference order), :func:`available` (those whose dependency
imports), :func:`get` (the backend object; unknown names are refused), :func:`node_kinds`,
:func:`install_hint`.

May import at module level only the standard library, ``snn2hw.common.errors`` and
``snn2hw.compat`` (no numpy: the CLI reads :func:`names` for its options); lazily
``snn2hw.backends.base`` and ``snn2hw.quant``; the backend modules only lazily, inside
:func:`get`. Never pipeline, chip, training, reporting or cli.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from typing import TYPE_CHECKING

from snn2hw.common.errors import MissingDependencyError, Snn2hwError
from snn2hw.compat.lava_py311 import INSTALL_HINT as LAVA_INSTALL_HINT

if TYPE_CHECKING:  # numpy-free at import: the CLI builds its options from names()
    from snn2hw.backends.base import Backend

__all__ = [
    "BackendUnavailableError",
    "UnknownBackendError",
    "available",
    "get",
    "install_hint",
    "names",
    "node_kinds",
]


class UnknownBackendError(Snn2hwError):
    """A backend name that is not in the registry."""


class BackendUnavailableError(MissingDependencyError):
    """A registered backend whose dependency is not installed."""


# ----- the list -------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Entry:
    name: str
    module: str  # holds the backend object
    attr: str  # its name there
    requires: tuple[str, ...]  # importable modules the backend needs at run time
    install_hint: str


_ENTRIES: tuple[_Entry, ...] = (
    _Entry("torch-int", "snn2hw.backends.torch_int", "BACKEND", ("torch",),
           "pip install torch"),
    _Entry("event", "snn2hw.backends.event", "BACKEND", ("numba",), "pip install numba"),
    _Entry("lava", "snn2hw.backends.lava", "BACKEND", ("lava",), LAVA_INSTALL_HINT),
    _Entry("onnx", "snn2hw.backends.onnx_runtime", "BACKEND", ("onnx", "onnxruntime"),
           "pip install onnx onnxruntime"),
)
_BY_NAME = {e.name: e for e in _ENTRIES}

def names() -> tuple[str, ...]:
    """Every registered backend name; the first is the usual reference."""
    return tuple(e.name for e in _ENTRIES)


def _entry(name: str) -> _Entry:
    try:
        return _BY_NAME[name]
    except KeyError:
        raise UnknownBackendError(
            f"unknown backend '{name}'; known: {', '.join(names())}"
        ) from None


def _installed(entry: _Entry) -> bool:
    if entry.name == "lava":  # lava needs its Python 3.11 fix applied to import at all
        from snn2hw.compat.lava_py311 import lava_available

        return lava_available()
    return all(importlib.util.find_spec(m) is not None for m in entry.requires)


def available() -> tuple[str, ...]:
    """The registered backends whose dependencies are installed."""
    return tuple(e.name for e in _ENTRIES if _installed(e))


def install_hint(name: str) -> str:
    """One line: how to install what backend ``name`` needs."""
    return _entry(name).install_hint


def get(name: str) -> Backend:
    """The backend registered as ``name`` (its module imported now). Raises
    :class:`UnknownBackendError` for an unknown name and :class:`BackendUnavailableError`
    (with the install hint) when importing the module fails for a missing dependency. The
    Lava module imports without lava-nc; running it then raises ``LavaMissingError``."""
    entry = _entry(name)
    try:
        module = importlib.import_module(entry.module)
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.split(".")[0] in entry.requires:
            raise BackendUnavailableError(
                f"backend '{name}' needs {exc.name}: {entry.install_hint}"
            ) from None
        raise
    backend: Backend = getattr(module, entry.attr)
    return backend


def node_kinds(name: str) -> frozenset[str]:
    """The qgraph node kinds backend ``name`` executes."""
    return get(name).node_kinds
