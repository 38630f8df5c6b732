"""Exporting registered models to ONNX and Core ML, and running exported ONNX files."""
