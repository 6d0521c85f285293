"""The guard: policy, bounded detection and ban state for `ctguard guard`."""
