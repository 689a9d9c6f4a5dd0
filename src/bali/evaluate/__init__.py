"""Evaluation of (pretrained) encoders on the paper's §5 benchmarks."""
