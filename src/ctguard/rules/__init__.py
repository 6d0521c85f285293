"""Firewall rules as data: ctguard's whole desired state, rendered per backend."""
