"""Run lava-dl's own netx (``lava.lib.dl.netx.hdf5.Network``) on Lava as the reference.

lava-dl 0.6.0 declares Python < 3.11 and its ``slayer`` package imports OpenCV and
torchvision at import time (object detection utilities) that netx never uses. This helper
installs nothing: it imports the netx modules without running ``slayer/__init__.py`` (a bare
package entry whose ``__path__`` points at the installed folder), so the real netx, blocks
and Lava processes run unchanged. Install with
``pip install --no-deps --ignore-requires-python lava-dl==0.6.0``.
"""

from __future__ import annotations

import importlib.util
import sys
import types
from typing import Any

import numpy as np


def import_netx() -> Any:
    """lava-dl's ``netx.hdf5`` module, or raise ImportError when lava-dl is not installed."""
    from snn2hw.compat.lava_py311 import import_lava

    import_lava()
    if "lava.lib.dl.slayer" not in sys.modules:
        spec = importlib.util.find_spec("lava.lib.dl.slayer")
        if spec is None or spec.submodule_search_locations is None:
            raise ImportError("lava-dl is not installed")
        pkg = types.ModuleType("lava.lib.dl.slayer")
        pkg.__path__ = list(spec.submodule_search_locations)
        sys.modules["lava.lib.dl.slayer"] = pkg
    from lava.lib.dl.netx import hdf5

    return hdf5


def run_netx(path: str, num_steps: int, *, input_frames: np.ndarray | None = None,
             input_bias: np.ndarray | None = None, layer_reset: int | None = None,
             network_reset: tuple[int, int] | None = None) -> np.ndarray:
    """Output spikes ``[num_steps, *out]`` (W, H, C order as netx builds it) of lava-dl's
    netx network on Lava's fixed-point models.

    ``input_frames`` ``[*in_shape, T]`` go through a RingBuffer into the network input
    (as lava-dl's oxford tutorial does); ``input_bias`` sets the input block's
    ``bias_mant`` (as lava-dl's tinynet test does); ``layer_reset`` adds that test's
    per-layer ``io.reset.Reset(interval=layer_reset, offset=i - 1)`` of u and v;
    ``network_reset`` ``(interval, offset)`` builds the network with netx's own
    ``reset_interval`` / ``reset_offset`` options instead."""
    hdf5 = import_netx()
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc import io

    opts = ({} if network_reset is None
            else {"reset_interval": network_reset[0], "reset_offset": network_reset[1]})
    net = hdf5.Network(net_config=path, **opts)
    sink = io.sink.RingBuffer(shape=net.out_layer.out.shape, buffer=num_steps)
    net.out_layer.out.connect(sink.a_in)
    if input_frames is not None:
        source = io.source.RingBuffer(data=input_frames)
        source.s_out.connect(net.inp)
    if input_bias is not None:
        net.in_layer.neuron.bias_mant.init = input_bias
    if layer_reset is not None:
        for i, layer in enumerate(net.layers):
            for var in (layer.neuron.u, layer.neuron.v):
                io.reset.Reset(interval=layer_reset, offset=i - 1).connect_var(var)
    net.run(condition=RunSteps(num_steps=num_steps), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
    out = sink.data.get()
    net.stop()
    return np.moveaxis(out, -1, 0)
