import sys

from qpe.cli import main

sys.exit(main())
