"""Command-line interface: ``main(argv, env) -> ExitStatus``, one module per command."""
