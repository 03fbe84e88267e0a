import sys

from splade_lightning.tools.main import main

if __name__ == "__main__":
    sys.exit(main())
