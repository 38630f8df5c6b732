"""Applications: each composes decode → preprocess → score → curve → outputs."""
