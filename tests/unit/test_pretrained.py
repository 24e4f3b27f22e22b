"""Tests for toxhelpers.pretrained: checkpoint resolution, the bundled weights, dropout mapping."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from toxhelpers import pretrained

# Pairs of (related, related, unrelated) sentences. A sentence encoder that learned language
# puts the first two close together; a randomly initialised one cannot tell them apart.
TRIPLES = [
    ("A man is playing a guitar.", "Someone plays the guitar.", "The stock market fell sharply today."),
    ("The cat sleeps on the sofa.", "A kitten is napping on the couch.", "Parliament passed the budget bill."),
    ("How do I bake bread at home?", "What is a good recipe for homemade bread?", "The train to Paris was delayed."),
    ("You are an idiot and a liar.", "You are a stupid dishonest fool.", "Thanks for fixing the citation."),
    ("It is raining heavily in London.", "There is a downpour in London today.", "She scored two goals in the final."),
]


def mean_pooled(encoder, tokenizer, sentences: list[str]) -> np.ndarray:
    batch = tokenizer(sentences, padding=True, return_tensors="np", return_token_type_ids=False)
    hidden = encoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                     training=False).last_hidden_state.numpy()
    mask = batch["attention_mask"][..., None]
    vectors = (hidden * mask).sum(1) / mask.sum(1)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def similarity_margin(encoder, tokenizer) -> float:
    """Mean over TRIPLES of cos(related pair) - cos(first, unrelated)."""
    margins = []
    for triple in TRIPLES:
        a, b, c = mean_pooled(encoder, tokenizer, list(triple))
        margins.append(float(a @ b - a @ c))
    return float(np.mean(margins))


def test_bundled_weights_are_the_real_pretrained_ones(bundled_checkpoint, tokenizer):
    """Real all-MiniLM-L6-v2 weights separate related from unrelated sentences by a wide
    margin; the same architecture with random weights does not (so the test can fail)."""
    from transformers import TFAutoModel

    assert bundled_checkpoint.weights_sha256 == pretrained.BUNDLED_WEIGHTS_SHA256
    trained = pretrained.load_encoder(bundled_checkpoint)
    config = pretrained.encoder_config(bundled_checkpoint)
    import tensorflow as tf

    tf.random.set_seed(0)
    random_init = TFAutoModel.from_config(config)
    trained_margin = similarity_margin(trained, tokenizer)
    random_margin = similarity_margin(random_init, tokenizer)
    print(f"similarity margin: pretrained {trained_margin:.3f}, random init {random_margin:.3f}")
    assert trained_margin > 0.4
    assert random_margin < 0.1


def test_bundled_encoder_has_distilbert_vocabulary(bundled_checkpoint, tokenizer):
    assert bundled_checkpoint.model_type == "bert" and tokenizer.vocab_size == 30522
    assert tokenizer.convert_tokens_to_ids(["[CLS]", "[SEP]", "[PAD]", "idiot"]) == [101, 102, 0, 10041]


def test_local_directory_is_used_as_is(bundled_checkpoint, tmp_path):
    folder = tmp_path / "my-model"
    shutil.copytree(bundled_checkpoint.path, folder)
    resolved = pretrained.resolve_checkpoint(str(folder), announce=False)
    assert resolved.source == "local directory" and resolved.path == folder
    assert resolved.weights_sha256 == pretrained.BUNDLED_WEIGHTS_SHA256


def test_missing_folder_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="looks like a folder but does not exist"):
        pretrained.resolve_checkpoint(str(tmp_path / "nope"))


def test_offline_mode_falls_back_to_bundled_with_a_notice(monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(pretrained, "_ANNOUNCED", set())
    resolved = pretrained.resolve_checkpoint("distilbert-base-uncased-not-cached-xyz")
    assert resolved.source == "bundled fallback" and resolved.is_bundled
    said = capsys.readouterr()
    assert ("NOTICE: 'distilbert-base-uncased-not-cached-xyz' is not a folder (relative to "
            f"{Path.cwd()}), so it was taken for a Hugging Face hub model name, and the hub is not "
            "reachable (HF_HUB_OFFLINE=1)") in said.out and not said.err  # stdout: not shown as an error
    pretrained.resolve_checkpoint("distilbert-base-uncased-not-cached-xyz")
    assert capsys.readouterr().out == ""  # once per process (a lesson's kernel)
    described = resolved.describe()
    assert described["model_id"] == pretrained.BUNDLED_MODEL_ID
    assert described["requested"] == "distilbert-base-uncased-not-cached-xyz"


def test_unreachable_hub_falls_back_to_bundled(monkeypatch):
    import huggingface_hub
    from huggingface_hub.errors import LocalEntryNotFoundError

    def unreachable(*args, **kwargs):
        raise LocalEntryNotFoundError("connection refused")

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", unreachable)
    resolved = pretrained.resolve_checkpoint("distilbert-base-uncased", announce=False)
    assert resolved.source == "bundled fallback" and "LocalEntryNotFoundError" in resolved.notice


def test_unknown_hub_model_is_an_error_not_a_fallback(monkeypatch):
    import huggingface_hub
    from huggingface_hub.errors import LocalEntryNotFoundError, RepositoryNotFoundError

    class FakeResponse:
        status_code = 404
        headers: dict = {}
        request = None

    def not_found(*args, local_files_only=False, **kwargs):
        if local_files_only:
            raise LocalEntryNotFoundError("not cached")
        raise RepositoryNotFoundError("no such repo", response=FakeResponse())

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", not_found)
    with pytest.raises(ValueError, match="neither a local folder nor a model on the Hugging Face hub"):
        pretrained.resolve_checkpoint("someone/typo-model", announce=False)


def test_tampered_bundled_weights_are_refused(monkeypatch, bundled_checkpoint, tmp_path):
    fake = tmp_path / "model"
    fake.mkdir()
    shutil.copy(bundled_checkpoint.path / "config.json", fake)
    (fake / "model.safetensors").write_bytes(b"not the real weights")
    monkeypatch.setattr(pretrained, "bundled_encoder_dir", lambda: fake)
    with pytest.raises(RuntimeError, match="expected 53aa51172d14"):
        pretrained.resolve_checkpoint(pretrained.BUNDLED)


def test_dropout_maps_onto_bert_fields(bundled_checkpoint):
    config = pretrained.encoder_config(bundled_checkpoint, dropout=0.2, attention_dropout=0.3)
    assert (config.hidden_dropout_prob, config.attention_probs_dropout_prob) == (0.2, 0.3)
    with pytest.raises(ValueError, match=r"must be in \[0, 1\)"):
        pretrained.encoder_config(bundled_checkpoint, dropout=1.5)


def test_distilbert_checkpoint_loads_through_auto_classes(tmp_path, bundled_checkpoint):
    """A (tiny, randomly initialised) DistilBERT folder loads via the same code path, with the
    dropout rates landing on DistilBERT's own field names."""
    from transformers import DistilBertConfig, TFDistilBertModel

    folder = tmp_path / "tiny-distilbert"
    tiny = TFDistilBertModel(DistilBertConfig(vocab_size=30522, dim=32, hidden_dim=64, n_layers=1, n_heads=2))
    tiny(tiny.dummy_inputs)
    tiny.save_pretrained(folder)
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(bundled_checkpoint.path / name, folder)
    resolved = pretrained.resolve_checkpoint(str(folder), announce=False)
    config = pretrained.encoder_config(resolved, dropout=0.2, attention_dropout=0.2)
    assert resolved.model_type == "distilbert" and (config.dropout, config.attention_dropout) == (0.2, 0.2)
    encoder = pretrained.load_encoder(resolved, config)
    out = encoder(input_ids=np.array([[101, 7592, 102]]), attention_mask=np.array([[1, 1, 1]]))
    assert out.last_hidden_state.shape == (1, 3, 32)


def checkpoint_copy(bundled_checkpoint, folder: Path) -> Path:
    """A local checkpoint folder: the bundled encoder's files, weights included (hard to beat for realism)."""
    shutil.copytree(bundled_checkpoint.path, folder, ignore=shutil.ignore_patterns("1_Pooling", "*.md"))
    return folder


@pytest.mark.parametrize("cut", [1000, 90_000_000])
def test_truncated_safetensors_is_refused_naming_the_file(bundled_checkpoint, tmp_path, cut):
    folder = checkpoint_copy(bundled_checkpoint, tmp_path / "cut")
    weights = folder / "model.safetensors"
    with open(weights, "r+b") as handle:
        handle.truncate(cut)
    with pytest.raises(ValueError, match=rf"{weights}: .*expected a complete safetensors file"):
        pretrained.resolve_checkpoint(str(folder), announce=False)


def test_weights_that_are_not_safetensors_are_refused_naming_the_file(bundled_checkpoint, tmp_path):
    folder = checkpoint_copy(bundled_checkpoint, tmp_path / "junk")
    (folder / "model.safetensors").write_bytes(b"<html>rate limited</html>")
    with pytest.raises(ValueError, match=rf"{folder / 'model.safetensors'}: not a readable safetensors file"):
        pretrained.resolve_checkpoint(str(folder), announce=False)


def test_malformed_config_is_refused_naming_the_file(bundled_checkpoint, tmp_path):
    folder = checkpoint_copy(bundled_checkpoint, tmp_path / "badconfig")
    (folder / "config.json").write_text('{"model_type": "bert",')
    with pytest.raises(ValueError, match=rf"{folder / 'config.json'}: not valid JSON .*expected a Hugging Face model config"):
        pretrained.resolve_checkpoint(str(folder), announce=False)


def test_encoder_positions_come_from_the_config(bundled_checkpoint, tmp_path):
    assert pretrained.encoder_positions(pretrained.BUNDLED)[0] == 512
    folder = tmp_path / "short"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "bert", "max_position_embeddings": 128}))
    limit, origin = pretrained.encoder_positions(str(folder))
    assert limit == 128 and str(folder / "config.json") in origin
