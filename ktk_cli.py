"""The `ktk` console command: imports the kit lazily, so that a subcommand
that needs no TensorFlow (`ktk diagnose log.csv`) starts without it."""

import os
import sys


def main() -> int:
    os.environ.setdefault("KERAS_TRAINING_KIT_LAZY", "1")
    from keras_training_kit.__main__ import main as run

    return run()


if __name__ == "__main__":
    sys.exit(main())
