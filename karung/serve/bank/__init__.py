"""The perceptual-hash bank of known-bad photos: store, matcher, seller linking, CSV exchange.

The entry point for other areas is :class:`karung.serve.bank.service.BankService`.
"""
