"""Name -> loader registry behind :func:`load_dataset` and :func:`available_datasets`."""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from snn2hw.common.errors import DatasetError
from snn2hw.data import cifar, digits, idx, mnist1d, mnist5k, nmnist, synthetic
from snn2hw.data.base import Dataset, resolve_data_dir, validation_fraction

#: Loader signature: ``loader(data_dir, seed, **options) -> Dataset``; options keyword-only.
Loader = Callable[..., Dataset]


@dataclass(frozen=True)
class DatasetEntry:
    """One registered data set."""

    name: str
    description: str
    loader: Loader
    uses_files: bool  # reads --data-dir (False: embedded or generated)


_REGISTRY: dict[str, DatasetEntry] = {}
_ALIASES: dict[str, str] = {}

DEFAULT_DATASET = "digits"


def register_dataset(
    name: str,
    description: str,
    loader: Loader,
    *,
    uses_files: bool = False,
    aliases: tuple[str, ...] = (),
) -> None:
    """Register ``loader`` under ``name`` (lower case); re-registering a name replaces it."""
    key = _normalise(name)
    _REGISTRY[key] = DatasetEntry(key, description, loader, uses_files)
    for alias in aliases:
        _ALIASES[_normalise(alias)] = key


def _normalise(name: str) -> str:
    return name.strip().lower().replace("_", "-")


def available_datasets() -> dict[str, str]:
    """Registered data set names -> one-line descriptions (registration order)."""
    return {name: entry.description for name, entry in _REGISTRY.items()}


def _option_names(loader: Loader) -> list[str]:
    params = inspect.signature(loader).parameters.values()
    return [p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY]


def load_dataset(
    name: str = DEFAULT_DATASET,
    data_dir: str | os.PathLike[str] | None = None,
    *,
    seed: int = 0,
    val_fraction: float = 0.0,
    **options: object,
) -> Dataset:
    """Load a data set by name.

    ``data_dir`` (default ``$SNN2HW_DATA_DIR`` or ``./data``) is read only by the file-based
    data sets (mnist, fashion-mnist, cifar10, nmnist). ``seed`` fixes the train/test split
    where the data set has no official one. ``val_fraction`` > 0 gives a validation split:
    the loader's official one if it has one, else that fraction of the training data,
    stratified and fixed by ``seed`` (:meth:`Dataset.with_validation`); ``x_train`` is then
    the rest and the test split is unchanged. 0 (default): no validation split.
    ``options`` are data-set specific (see each loader); unknown names raise
    :class:`DatasetError`.
    """
    if not isinstance(name, str):
        raise DatasetError(f"dataset name must be a string, got {name!r}")
    key = _normalise(name)
    key = _ALIASES.get(key, key)
    entry = _REGISTRY.get(key)
    if entry is None:
        raise DatasetError(f"unknown dataset {name!r}; known datasets: {', '.join(_REGISTRY)}")
    accepted = _option_names(entry.loader)
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        takes = f"it accepts {', '.join(accepted)}" if accepted else "it takes no options"
        raise DatasetError(f"{key}: unknown option(s) {', '.join(unknown)}; {takes}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise DatasetError(f"{key}: seed must be an integer, got {seed!r}")
    if val_fraction:
        val_fraction = validation_fraction(key, val_fraction)
    directory: Path | None = resolve_data_dir(data_dir) if entry.uses_files else None
    ds = entry.loader(directory, seed, **options)
    return ds.with_validation(val_fraction, seed) if val_fraction else ds


register_dataset("digits", digits.DESCRIPTION, digits.load)
register_dataset("mnist5k", mnist5k.DESCRIPTION, mnist5k.load, aliases=("mnist-5k",))
register_dataset("mnist1d", mnist1d.DESCRIPTION, mnist1d.load, aliases=("mnist-1d",))
register_dataset("mnist", idx.MNIST_DESCRIPTION, idx.load_mnist, uses_files=True)
register_dataset(
    "fashion-mnist",
    idx.FASHION_DESCRIPTION,
    idx.load_fashion_mnist,
    uses_files=True,
    aliases=("fashionmnist",),
)
register_dataset("cifar10", cifar.DESCRIPTION, cifar.load, uses_files=True, aliases=("cifar-10",))
register_dataset("nmnist", nmnist.DESCRIPTION, nmnist.load, uses_files=True, aliases=("n-mnist",))
register_dataset("synthetic-events", synthetic.DESCRIPTION, synthetic.load, aliases=("synthetic",))
