import sys

from perennial_studio.cli import main

sys.exit(main())
