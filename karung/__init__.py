"""karung: detect and block listings of imported used-clothing bales.

Sub-packages: :mod:`karung.vision` (pure library: decoding, model, hashing, index),
:mod:`karung.training` (synthesis, fine-tuning, evaluation, export) and :mod:`karung.serve`
(HTTP service, stores, moderator UI). Imports go one way: training -> vision, serve -> vision.
"""

__version__ = "0.1.0"
