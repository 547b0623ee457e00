import sys

from qvl_agent.cli import main

sys.exit(main())
