"""Shared toolkit of the four GAN restoration families (layers, losses, data, training, inference)."""

import os

# TensorFlow's C++ start-up chatter (oneDNN, CUDA probing) would bury our one-line error messages.
# Users can still ask for it with TF_CPP_MIN_LOG_LEVEL=0.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
