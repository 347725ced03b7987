"""Compatibility shims for third-party packages snn2hw integrates with."""
