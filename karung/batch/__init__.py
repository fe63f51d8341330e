"""Batch backfills: score, hash and bank-match a whole catalogue of listing photos on Ray Data.

This room sits beside the service: it imports :mod:`karung.vision` (decoding, hashing, the
classifier) and, from :mod:`karung.serve`, the hardened fetcher, the decision policy, the bank
store and the review queue, so a backfilled photo gets exactly what a live upload would.
Nothing in ``vision`` or ``serve`` imports it (``tests/test_layout.py``).

Modules: :mod:`.inputs` (catalogue files -> input rows), :mod:`.bundle` (model files shipped
through the object store), :mod:`.snapshot` (a read-only bank snapshot), :mod:`.decoding` (one
decode where the model's and the hashing decode coincide), :mod:`.scorer` (one batch of rows ->
result rows, no Ray), :mod:`.worker` (the Ray actor around it), :mod:`.schema` (the output
columns), :mod:`.shards` (resumable shard files), :mod:`.sinks` (review queue, bank and
match-event writes), :mod:`.report` (summary JSON and Markdown) and :mod:`.runner` (the Ray
driver).
"""
