"""Benchmark engines of the service (``karung bench serve``, ``hostile``, ``intake``, ``decode``):
the loopback stack they run on, the load drivers and the figures; ``karung.cli`` parses and
prints."""
