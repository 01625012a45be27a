"""``python -m unisockets``: the command line (see :mod:`unisockets.cli`)."""

from unisockets.cli import main

if __name__ == "__main__":
    main()
