"""A BERT encoder small enough to build inside a test (the real one is the ``encoder`` fixture)."""

from __future__ import annotations

from typing import Any


def tiny_encoder(seed: int = 0) -> Any:
    """A 2-layer, 32-wide BERT with random weights and the bundled vocabulary's size, built under
    the current precision policy. For tests whose claim does not depend on pretrained weights (a
    dtype policy, weights put back after timed steps): the real encoder costs such a test 10-30 s
    of tracing and training on a 2-core machine, this one about a tenth of that."""
    from transformers import BertConfig, TFBertModel

    from toxhelpers.tf_setup import tf_keras

    tf_keras.utils.set_random_seed(seed)
    return TFBertModel(BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                  intermediate_size=64, max_position_embeddings=128))
