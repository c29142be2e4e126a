"""Pictures of a graph: the scene (:mod:`.scene`), its forward views (:mod:`.views`), the backward
half from the reverse pass (:mod:`.backward`), DOT and SVG/PNG/PDF (:mod:`.dot`), and the Graphviz
engines that lay it out, a system ``dot`` or the embedded WebAssembly one (:mod:`.engine`)."""
