"""``python -m sim.report RESULTS_FOLDER``: rebuild a folder's plots/ and report.md."""

import sys

from sim.report.make import main

sys.exit(main())
