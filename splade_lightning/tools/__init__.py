"""The command-line tools: one module per subcommand of ``splade-lightning`` (``python -m splade_lightning``). Only
tools import tools; the library never imports them."""
