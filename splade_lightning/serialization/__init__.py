"""Saving and loading models: model directories (ours, OpenSearch's, sentence-transformers' SPLADE, CSR and Router
layouts) with one architecture registry, the payload a Lightning checkpoint carries, and Anserini impact exports.
Pure torch: never imports Lightning."""
