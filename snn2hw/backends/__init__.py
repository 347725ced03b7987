"""Integer backends that execute a quantized graph (docs/qgraph.md)."""
