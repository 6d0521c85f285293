"""Pure analysis: snapshots in, metrics and findings out."""
