"""The only package that changes the system: sysctls, files, rulesets, entries."""
