import sys

from spinecore.cli import main

sys.exit(main())
