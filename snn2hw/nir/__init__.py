"""torch <-> NIR: export, import (with other frameworks' conventions) and the float path.

* :func:`to_nir` / :func:`write_nir`: a :class:`~snn2hw.nn.model.SpikingNet` as a NIR graph.
* :func:`read_nir`, :func:`check_graph`, :func:`resolve_timing`: read any NIR file, validate
  it and decide dt and convention (never silently); one module per job: ``importer``
  (reading), ``analysis`` (validation, topology), ``shapes``, ``fields``, ``notes``,
  ``timing``.
* :class:`NIRNet`: execute a float NIR graph in PyTorch (differentiable).
* :func:`discretize_neuron`: the one definition of NIR neurons as per-step parameters.
"""

from snn2hw.nir.analysis import SUPPORTED_TYPES, GraphInfo, analyze, check_graph
from snn2hw.nir.discretize import (
    CONVENTIONS,
    Convention,
    DiscreteNeuron,
    discretize_neuron,
    get_convention,
    is_neuron,
    with_reset,
)
from snn2hw.nir.executor import NIRNet, load_nir
from snn2hw.nir.export import to_nir, write_nir
from snn2hw.nir.importer import read_nir
from snn2hw.nir.notes import import_notes
from snn2hw.nir.timing import resolve_timing

__all__ = [
    "CONVENTIONS",
    "Convention",
    "DiscreteNeuron",
    "GraphInfo",
    "NIRNet",
    "SUPPORTED_TYPES",
    "analyze",
    "check_graph",
    "discretize_neuron",
    "get_convention",
    "import_notes",
    "is_neuron",
    "load_nir",
    "read_nir",
    "resolve_timing",
    "to_nir",
    "with_reset",
    "write_nir",
]
