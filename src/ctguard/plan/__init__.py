"""Changes as values: every change ctguard can make is described here first."""
