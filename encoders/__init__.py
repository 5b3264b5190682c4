"""Sensor encoders (state, ViT, object-centric ViT, OSRT, audio, region): each maps an observation
batch to ``(B, n_tokens, d)``. None is implemented yet; they arrive with issue 5."""
