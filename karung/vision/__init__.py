"""Pure image library: decoding, preprocessing, the classifier, perceptual hashes and the index.

Nothing here imports :mod:`karung.training` or :mod:`karung.serve`, and nothing heavy (torch) is
imported by this ``__init__``: import the sub-module you need.
"""
