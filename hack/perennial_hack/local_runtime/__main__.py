"""`python -m perennial_hack.local_runtime`: see runtime.py."""

import sys

from perennial_hack.local_runtime.runtime import main

sys.exit(main())
