"""The stages a command runs, in flow order: ``samples`` (input frames for a graph) feed
``export`` (checkpoint/NIR -> quantized graph + resource map) and ``simulate`` (one backend
over the samples), which feeds ``compare`` (several backends, first divergence); ``demo``
runs them all.

May import: every package below ``cli``.
"""
