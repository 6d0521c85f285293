"""Pure renderers: a FirewallState in, one atomically loadable script out."""
