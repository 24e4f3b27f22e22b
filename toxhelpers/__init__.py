"""toxhelpers: the thin helper package behind the toxic-comment transfer-learning lessons.

Importing it first matters: TensorFlow 2.16+ ships Keras 3, while Hugging Face's TF model
classes need the legacy Keras 2 (the ``tf-keras`` package). ``TF_USE_LEGACY_KERAS=1`` must be
set before TensorFlow is first imported, so it is set here, before anything else.
"""

from __future__ import annotations

import os
import warnings

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep C++ start-up chatter out of lessons

# Progress bars are plain text so they stream into papermill logs; tqdm.auto (imported by
# transformers and nlpaug) would otherwise warn that notebook widgets are missing.
warnings.filterwarnings("ignore", message="IProgress not found")

__version__ = "0.1.0"
