"""``python -m framescore`` (and ``torchrun -m framescore``): the command line."""

from framescore.cli import main

raise SystemExit(main())
