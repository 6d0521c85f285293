"""`python -m ctguard` entry point."""

from ctguard.cli.main import run

run()
