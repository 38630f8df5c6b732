"""``python -m framescore`` (and ``torchrun -m framescore``): the command line."""

from framescore.cli import main

if __name__ == "__main__":  # not when a helper process (framescore.sidecar) starts
    raise SystemExit(main())
