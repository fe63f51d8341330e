"""API keys of the scoring service: stored hashed, each with a set of scopes.

A key looks like ``krg_<8 hex id>_<43 url-safe chars>``; only its SHA-256 is stored (the key is
256 random bits, so a fast hash is enough: there is nothing to brute-force). The short id after
``krg_`` is kept in clear so operators can tell keys apart in listings and logs.
"""
