"""`python -m tabula`: the same as the `tabula` console script."""

import sys

from tabula.cli import main

if __name__ == "__main__":
    sys.exit(main())
