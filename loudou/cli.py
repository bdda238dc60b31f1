"""The ``loudou`` command: Django's management commands plus Loudou's own."""

import os
import sys


def main(argv=None):
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loudou.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(["loudou", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    main()
