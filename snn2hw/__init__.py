"""snn2hw: spiking neural networks from PyTorch training to neuromorphic hardware.

Data flow (each stage reads one representation and writes the next):
train (``snn2hw.nn``, ``snn2hw.training.train``) -> NIR (``snn2hw.nir``) -> quantized graph
(``snn2hw.quant``) -> integer backends (``snn2hw.backends``) -> compare / energy.
"""

from snn2hw.common.threads import prefer_passive_wait as _prefer_passive_wait

__version__ = "0.1.0"

# Before anything imports torch: idle OpenMP threads sleep instead of spinning, so a busy
# machine slows runs in proportion (snn2hw/common/threads.py says why).
_prefer_passive_wait()
