"""Foundation shared by every layer: named errors, atomic file writes, unit conversions.

May import: the standard library and numpy only (never another snn2hw package).
"""
