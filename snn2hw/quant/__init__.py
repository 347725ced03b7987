"""Quantization to target integer formats and the quantized graph contract."""
