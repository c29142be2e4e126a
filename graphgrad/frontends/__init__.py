"""Front ends: model text (``text``), the Python builder (``builder``), raw networkx (``graphgrad.graph.from_networkx``)."""
