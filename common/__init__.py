"""Shared toolkit of the four GAN restoration families (layers, losses, data, training, inference)."""

import os

# TensorFlow's C++ start-up chatter (oneDNN, CUDA probing) would bury our one-line error messages.
# Users can still ask for it with TF_CPP_MIN_LOG_LEVEL=0.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# ... and the lines its libraries print while they load, before that setting applies.
from common import quiet as _quiet  # noqa: E402

_quiet.install()
