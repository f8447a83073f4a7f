"""``python -m depthgate.app serve|worker|reconcile``."""

import sys

from depthgate.app.cli import main

sys.exit(main())
