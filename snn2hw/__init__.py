"""snn2hw: spiking neural networks from PyTorch training to neuromorphic hardware.

Data flow (each stage reads one representation and writes the next):
train (``snn2hw.nn``, ``snn2hw.training.train``) -> NIR (``snn2hw.nir``) -> quantized graph
(``snn2hw.quant``) -> integer backends (``snn2hw.backends``) -> compare / energy.
"""

__version__ = "0.1.0"
