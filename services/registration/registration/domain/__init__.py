"""Pure registry logic: poverty scoring, equity card numbers and the gazetteer. No I/O, no async."""
