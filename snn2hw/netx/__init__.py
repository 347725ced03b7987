"""lava-dl netx networks (``.net``, HDF5): read them and map them to snn2hw's representations.

* :mod:`snn2hw.netx.reader`: safe HDF5 parsing (sizes, types, one-line errors);
* :mod:`snn2hw.netx.to_qgraph`: each block as quantized-graph nodes, integers unchanged;
* :mod:`snn2hw.netx.to_nir`: the same network as a NIR graph (the float path);
* :mod:`snn2hw.netx.encoding`: the input encodings lava-dl's netx tutorials use.

docs/netx.md describes the format, how each field maps and the sources.
"""

from snn2hw.netx.reader import NetxError, NetxNetwork, hdf5_kind, is_netx_file, read_netx
from snn2hw.netx.to_qgraph import NetxGraph, netx_to_qgraph

__all__ = ["NetxError", "NetxGraph", "NetxNetwork", "hdf5_kind", "is_netx_file",
           "netx_to_qgraph", "read_netx"]
