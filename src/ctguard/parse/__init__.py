"""Pure parsers: text in, values out.  One module per kernel file or tool output.

Parsers never open files; callers pass the text and a ``source`` label used
in error messages.
"""
