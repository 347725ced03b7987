"""Shape inference for NIR nodes: the shape each supported node emits for a given input.

Shapes are inferred from the Input node through each node's own semantics rather than
taken from the ``input_type``/``output_type`` that exporters store, because several
exporters store them wrong (Rockpool's Output ``[1, 1, 1]``, nirtorch's batch dimension
on Input, scalar neuron parameters without a shape). Every inconsistency is a one-line
:class:`~snn2hw.common.errors.GraphError` naming the edge or node at fault; assumptions are
appended to the caller's notes.

May import: ``nir``, ``numpy``, :mod:`snn2hw.nir.fields`, :mod:`snn2hw.nir.discretize` and
:mod:`snn2hw.common`.
"""

from __future__ import annotations

import math
from typing import Any

import nir
import numpy as np

from snn2hw.common.errors import GraphError
from snn2hw.nir.discretize import NEURON_TYPES
from snn2hw.nir.fields import TYPE_FIELDS, as_array, as_ints, meta_value

Shape = tuple[int, ...]


def fmt_shape(shape: Any) -> str:
    """A shape for messages: ``[2, 3]``, or ``undefined``."""
    return str([int(s) for s in shape]) if shape is not None else "undefined"


def declared_shape(node: nir.NIRNode, key: str) -> Shape | None:
    """The shape a node declares in ``key`` (``input_type``/``output_type``), if any."""
    types = getattr(node, key, None)
    if not isinstance(types, dict) or len(types) != 1:
        return None
    val = next(iter(types.values()))
    if val is None:
        return None
    return tuple(int(s) for s in np.atleast_1d(as_array(val)).reshape(-1))


def input_shape(graph: nir.NIRGraph, name: str, edges, notes: list[str]) -> Shape:
    """The Input node's shape, without a batch dimension of 1 that nirtorch adds."""
    node = graph.nodes[name]
    shape = declared_shape(node, "output_type") or declared_shape(node, "input_type")
    if shape is None:
        raise GraphError(f"Input node '{name}' has no shape")
    # nirtorch-based exporters (Norse, snnTorch) record the sample's batch dimension.
    if len(shape) > 1 and shape[0] == 1:
        wants = [_expected_input(graph.nodes[b]) for a, b in edges if a == name]
        if wants and all(w == shape[1:] for w in wants):
            notes.append(
                f"Input node '{name}' declares shape {fmt_shape(shape)} with a leading batch "
                f"dimension of 1; using {fmt_shape(shape[1:])}"
            )
            return shape[1:]
    return shape


def _expected_input(node: nir.NIRNode) -> Shape | None:
    """The input shape a node's own parameters imply (None where they do not fix it)."""
    if isinstance(node, (nir.Affine, nir.Linear)):
        return (int(as_array(node.weight).shape[-1]),)
    return None


def _neuron_param_shape(name: str, node: nir.NIRNode) -> Shape:
    shapes = []
    for key, val in vars(node).items():
        if key in TYPE_FIELDS or val is None:
            continue
        shapes.append(as_array(val).shape)
    try:
        return tuple(np.broadcast_shapes(*shapes)) if shapes else ()
    except ValueError:
        raise GraphError(
            f"node '{name}' ({type(node).__name__}): parameter shapes "
            f"{[list(s) for s in shapes]} do not broadcast together"
        ) from None


def _mismatch(src: str, dst: str, got: Shape, want: Any) -> GraphError:
    return GraphError(
        f"inconsistent shapes on edge ('{src}', '{dst}'): '{src}' gives {fmt_shape(got)}, "
        f"'{dst}' expects {want if isinstance(want, str) else fmt_shape(want)}"
    )


def _conv_out(size: int, k: int, s: int, p: int, d: int) -> int:
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


def conv_geometry(name: str, node: nir.NIRNode) -> dict[str, Any]:
    """Stride, padding (ints or 'same'/'valid'), dilation and groups of a Conv node."""
    nd = 1 if isinstance(node, nir.Conv1d) else 2
    pad = node.padding
    if isinstance(pad, np.ndarray) and pad.dtype.kind in "SOU":  # a string read back by h5py
        pad = pad.reshape(-1)[0]
    if isinstance(pad, bytes):
        pad = pad.decode()
    if isinstance(pad, np.str_):
        pad = str(pad)
    padding: Any = pad if isinstance(pad, str) else as_ints(pad, nd, "padding", name)
    if isinstance(padding, str) and padding not in ("same", "valid"):
        raise GraphError(f"node '{name}': padding '{padding}' is not 'same', 'valid' or integers")
    return dict(
        stride=as_ints(node.stride, nd, "stride", name),
        padding=padding,
        dilation=as_ints(node.dilation, nd, "dilation", name),
        groups=int(as_array(node.groups).reshape(-1)[0]) if np.size(as_array(node.groups)) else 1,
    )


def node_output_shape(name: str, node: nir.NIRNode, shape: Shape, src: str, notes) -> Shape:
    """What node ``name`` emits for input ``shape`` (arriving from ``src``); checks that its
    parameters fit that input."""
    if isinstance(node, nir.Output):
        declared = declared_shape(node, "output_type") or declared_shape(node, "input_type")
        if declared is not None and declared != shape:
            if math.prod(declared) != math.prod(shape):
                raise _mismatch(src, name, shape, declared)
            notes.append(
                f"Output node '{name}' declares shape {fmt_shape(declared)} but receives "
                f"{fmt_shape(shape)}; using {fmt_shape(shape)}"
            )
        return shape
    if isinstance(node, (nir.Affine, nir.Linear)):
        w = as_array(node.weight)
        if w.ndim != 2:
            raise GraphError(
                f"node '{name}' ({type(node).__name__}): weight must be 2-D, got {list(w.shape)}"
            )
        if shape != (w.shape[1],):
            raise _mismatch(src, name, shape, (w.shape[1],))
        if isinstance(node, nir.Affine) and node.bias is not None:
            b = as_array(node.bias)
            if b.shape not in ((w.shape[0],), (), (1,)):
                raise GraphError(
                    f"node '{name}': bias shape {list(b.shape)} does not match weight "
                    f"{list(w.shape)}"
                )
        return (int(w.shape[0]),)
    if isinstance(node, (nir.Scale, nir.Threshold, nir.Delay)):
        p = as_array(node.scale if isinstance(node, nir.Scale) else
                     node.delay if isinstance(node, nir.Delay) else node.threshold)
        try:
            ok = np.broadcast_shapes(p.shape, shape) == shape
        except ValueError:
            ok = False
        if not ok:
            raise _mismatch(src, name, shape, p.shape)
        return shape
    if isinstance(node, (nir.Conv1d, nir.Conv2d)):
        nd = 1 if isinstance(node, nir.Conv1d) else 2
        w = as_array(node.weight)
        g = conv_geometry(name, node)
        if w.ndim != nd + 2:
            raise GraphError(
                f"node '{name}': {type(node).__name__} weight must be {nd + 2}-D, "
                f"got {list(w.shape)}"
            )
        cin = int(w.shape[1]) * g["groups"]
        if len(shape) != nd + 1 or shape[0] != cin:
            raise _mismatch(src, name, shape, f"[{cin}, " + ", ".join(["*"] * nd) + "]")
        spatial = shape[1:]
        declared = getattr(node, "input_shape", None)
        if declared is not None:
            dec = as_ints(declared, nd, "input_shape", name)
            if dec != spatial:
                raise _mismatch(src, name, shape, (cin, *dec))
        if g["padding"] == "same":
            out = spatial
        else:
            pad = (0,) * nd if g["padding"] == "valid" else g["padding"]
            out = tuple(
                _conv_out(spatial[i], int(w.shape[2 + i]), g["stride"][i], pad[i], g["dilation"][i])
                for i in range(nd)
            )
        if min(out) <= 0:
            raise GraphError(
                f"node '{name}': convolution of {fmt_shape(shape)} gives an empty output"
            )
        if node.bias is not None and as_array(node.bias).size not in (0, 1, int(w.shape[0])):
            raise GraphError(
                f"node '{name}': bias has {as_array(node.bias).size} values for "
                f"{w.shape[0]} channels"
            )
        return (int(w.shape[0]), *out)
    if isinstance(node, (nir.SumPool2d, nir.AvgPool2d)):
        if len(shape) != 3:
            raise _mismatch(src, name, shape, "[C, H, W]")
        k = as_ints(node.kernel_size, 2, "kernel_size", name)
        s = as_ints(node.stride, 2, "stride", name) if node.stride is not None else k
        p = as_ints(node.padding, 2, "padding", name) if node.padding is not None else (0, 0)
        out = tuple(_conv_out(shape[1 + i], k[i], s[i], p[i], 1) for i in range(2))
        if min(out) <= 0:
            raise GraphError(f"node '{name}': pooling of {fmt_shape(shape)} gives an empty output")
        return (shape[0], *out)
    if isinstance(node, nir.Flatten):
        declared = declared_shape(node, "input_type")
        if declared is not None and declared != shape:
            raise _mismatch(src, name, shape, declared)
        nd = len(shape)
        start, end = int(meta_value(node.start_dim)), int(meta_value(node.end_dim))
        start, end = (start + nd if start < 0 else start), (end + nd if end < 0 else end)
        if not (0 <= start <= end < nd):
            raise GraphError(
                f"node '{name}': Flatten start_dim={node.start_dim}, end_dim={node.end_dim} "
                f"do not fit its input shape {fmt_shape(shape)}"
            )
        return (*shape[:start], math.prod(shape[start:end + 1]), *shape[end + 1:])
    if isinstance(node, NEURON_TYPES):
        pshape = _neuron_param_shape(name, node)
        try:
            ok = np.broadcast_shapes(pshape, shape) == shape
        except ValueError:
            ok = False
        if not ok:
            raise _mismatch(src, name, shape, pshape)
        return shape
    raise GraphError(f"node '{name}' has unsupported type {type(node).__name__}")  # unreachable
