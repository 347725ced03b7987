"""snn2hw."""
