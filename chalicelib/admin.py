"""``python -m chalicelib.admin``: the admin command's entry point (the command is
``chalicelib.ops.admin``; this name is what the README and operators type)."""

import sys

from chalicelib.ops.admin import main

if __name__ == "__main__":
    sys.exit(main())
