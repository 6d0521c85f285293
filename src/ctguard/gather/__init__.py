"""What the faces gather before they render: the layer below cli/.

Every face (the one-shot commands, the exporter, the guard, the live view,
the report) reads the host through these functions, so they see the same
evidence the same way.  Nothing here parses options or prints.
"""
