"""Real-kernel lab: network namespaces, veth links, traffic and table filling.

Everything created is named ``ctg-<run>-<name>`` and written to a journal
under /run/ctguard/lab before it exists, so a crashed run is cleaned up by
:func:`ctguard.lab.namespaces.clean_leftovers`.  Traffic only flows between
the lab's own namespaces (or on their loopback), bounded in count and time.
"""
