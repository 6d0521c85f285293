"""Output layer: text (rich), JSON payloads.  Core code never prints."""
