"""Shape data: sources, watertight conversion, SDF sampling, renders and the prepared store (paper §2)."""
