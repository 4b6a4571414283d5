import sys

from scaling.cli.main import main

sys.exit(main())
