"""srgan package."""

import common  # noqa: F401  (quiets TensorFlow start-up logs before tensorflow is imported)
