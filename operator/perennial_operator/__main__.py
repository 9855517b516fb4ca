"""`python -m perennial_operator` is `perennial-operator`."""

import sys

from perennial_operator.main import main

sys.exit(main())
