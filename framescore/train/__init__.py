"""Training and evaluation of the papers' models: losses, metrics, data, samplers, the loop.

Sub-modules are imported explicitly (``from framescore.train.losses import ...``); importing
this package itself loads nothing heavy.
"""
