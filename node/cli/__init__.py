"""The ``barnplan`` command line."""
