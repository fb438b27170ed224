"""``python -m ppopt``: the same program as the ``ppopt`` command."""

from ppopt.cli import main

if __name__ == "__main__":
    main()
