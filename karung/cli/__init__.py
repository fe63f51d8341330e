"""The ``karung`` command line. Sub-command modules are imported lazily (see :mod:`.main`)."""

from karung.cli.main import main

__all__ = ["main"]
