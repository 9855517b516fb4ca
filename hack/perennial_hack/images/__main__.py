import sys

from perennial_hack.images.build import main

sys.exit(main())
