"""Training data: splits, balancing, HDF5 shards, recording oracle episodes, the PyTorch dataset."""
