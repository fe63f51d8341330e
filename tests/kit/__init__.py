"""The shared test kit: a tiny checkpoint, service starters and fresh PostgreSQL databases.

Imported by every test area as ``kit.<module>`` (``tests`` is on ``pythonpath``); area kits such as
``serve/servekit.py`` keep only what is particular to their area.
"""
