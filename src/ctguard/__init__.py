"""ctguard: diagnose, explain, fix and prevent nf_conntrack table exhaustion."""

__version__ = "0.1.0"
