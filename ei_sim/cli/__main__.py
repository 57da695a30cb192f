"""``python -m ei_sim.cli ...``: the same as the ``ei-sim`` console script."""

import sys

from ei_sim.cli import main

sys.exit(main())
