"""The model zoo: one module per paper family, the default encoder and the registry.

Installed as ``framescore.models``; bundled weights and model cards live beside the code.
"""
