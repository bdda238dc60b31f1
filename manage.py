#!/usr/bin/env python
"""Same as the ``loudou`` command, for habit's sake."""

from loudou.cli import main

if __name__ == "__main__":
    main()
