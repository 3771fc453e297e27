"""python -m generator --help"""

import sys

from generator.cli import main

sys.exit(main())
