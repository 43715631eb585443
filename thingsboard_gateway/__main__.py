"""`python -m thingsboard_gateway` runs the same CLI as the `thingsboard-gateway` script."""
import sys

from thingsboard_gateway.cli import main

if __name__ == "__main__":
    sys.exit(main())
