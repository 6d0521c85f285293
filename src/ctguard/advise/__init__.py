"""Sizing and timeout knowledge: the kernel's real formulas and defaults."""
