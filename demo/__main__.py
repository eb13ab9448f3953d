"""``python -m demo``: run the embedded demo (see :mod:`demo.run`)."""

import sys

from demo.run import main

sys.exit(main())
