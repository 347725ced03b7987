"""Human-readable output: the HTML/Markdown report pages, plots and tables.

May import: ``chip``, ``quant``, ``common``. Never a backend: results arrive as data.
"""
