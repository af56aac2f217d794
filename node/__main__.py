"""``python -m node`` is the same as the ``barnplan`` command."""

from node.cli.main import run

run()
