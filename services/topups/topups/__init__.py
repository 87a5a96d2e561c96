"""Programme catalogue: routine programmes, rate tables and operator-defined top-ups."""
