"""The stages a command runs, in flow order: ``samples`` (input frames for a graph) feed
``export`` (checkpoint/NIR -> quantized graph + resource map) and ``simulate`` (one backend
over the samples), which feeds ``compare`` (several backends, first divergence); ``demo``
runs them all. ``artifacts`` resolves the export folder or ``.qgraph`` a command names;
each command of :mod:`snn2hw.cli` calls one function here (``export_artifact``,
``simulate_artifact``, ``compare_artifact``, ``energy_for_artifact``, ...).

May import: every package below ``cli``.
"""
