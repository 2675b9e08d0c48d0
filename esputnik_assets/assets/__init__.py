"""Software-defined assets: the nine raw export tables (and, downstream, the analytics built on them)."""
