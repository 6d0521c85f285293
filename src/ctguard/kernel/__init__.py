"""Readers of live kernel state, rooted at a KernelRoot (never a hard-coded /proc)."""
