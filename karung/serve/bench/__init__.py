"""Benchmark engines of the service (``karung bench serve``, ``hostile``, ``intake``, ``decode``):
the loopback stack they run on, the load drivers and the figures; and of the hash bank
(``karung bench hashes``: ``hashes.py`` with the edits of ``transforms.py``; ``karung bench
index``: ``index.py``). ``karung.cli`` parses and prints."""
