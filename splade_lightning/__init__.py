"""splade_lightning: train and evaluate learned sparse retrievers with PyTorch Lightning."""
