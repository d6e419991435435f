"""Model files with a subword tokenizer: the sentencepiece model travels inside, loads with
weights_only=True, and a damaged or foreign tokenizer blob is refused naming the file."""

import copy

import pytest
import torch

from asr.config.schema import ModelConfig
from asr.data.tokenizer import CharTokenizer, PieceTokenizer
from asr.frontend.features import FeatureConfig
from asr.models.acoustic import build_recognizer
from asr.models.checkpoint import ModelFileError, load_model, model_bundle, save_model

TEXTS = ["the cat sat on the mat", "a dog and a cat", "the lazy dog sat"] * 3


def _bundle(tokenizer, **kw) -> dict:
    torch.manual_seed(0)
    cfg = ModelConfig(hidden_size=16, num_layers=1, dropout=0.0)
    model = build_recognizer(FeatureConfig(), len(tokenizer), hidden_size=16, num_layers=1, dropout=0.0)
    return model_bundle(model.eval(), tokenizer.vocab, cfg, tokenizer=tokenizer, **kw)


@pytest.fixture(scope="module")
def bpe():
    return PieceTokenizer.train(TEXTS, "bpe", vocab_size=24)


def test_a_bpe_model_file_round_trips_with_weights_only(bpe, tmp_path):
    save_model(tmp_path / "model.pt", _bundle(bpe))
    raw = torch.load(tmp_path / "model.pt", weights_only=True)  # plain values and tensors only
    assert raw["tokenizer"]["kind"] == "bpe" and raw["tokenizer"]["model"].dtype == torch.uint8
    assert raw["tokenizer"]["model"].numpy().tobytes() == bpe.model_proto
    model, tok, _ = load_model(tmp_path / "model.pt")
    assert isinstance(tok, PieceTokenizer) and tok.kind == "bpe" and tok.vocab == bpe.vocab
    log_probs, _ = model(torch.zeros(1, 16000), torch.tensor([16000]))
    assert log_probs.shape[-1] == len(bpe) == 25  # blank + 24 pieces
    assert tok.decode(tok.encode("the dog sat on a mat")) == "the dog sat on a mat"


def test_a_character_model_file_has_no_tokenizer_entry_and_loads_as_before(tmp_path):
    chars = CharTokenizer.build(TEXTS)
    bundle = _bundle(chars)
    assert "tokenizer" not in bundle
    save_model(tmp_path / "model.pt", bundle)
    _, tok, _ = load_model(tmp_path / "model.pt")
    assert isinstance(tok, CharTokenizer) and tok.vocab == chars.vocab


def _broken(bundle: dict, how: str) -> dict:
    b = copy.deepcopy(bundle)
    blob = b["tokenizer"]["model"]
    if how == "flipped_byte":  # one byte changed: the recorded SHA-256 no longer matches
        blob[len(blob) // 2] ^= 0xFF
    elif how == "garbage_rehashed":  # random bytes with a matching hash: not a sentencepiece model at all
        import hashlib

        b["tokenizer"]["model"] = torch.randint(0, 256, (300,), dtype=torch.uint8, generator=torch.Generator()
                                                .manual_seed(1))
        b["tokenizer"]["sha256"] = hashlib.sha256(b["tokenizer"]["model"].numpy().tobytes()).hexdigest()
    elif how == "not_a_tensor":
        b["tokenizer"]["model"] = "c2VudGVuY2VwaWVjZQ=="
    elif how == "other_pieces":  # an intact model, but not the one this vocabulary (and these weights) came from
        other = PieceTokenizer.train(["zebras graze quietly"] * 4, "bpe", vocab_size=24)
        b["tokenizer"] = _bundle(other)["tokenizer"]
    return b


@pytest.mark.parametrize("how,needle", [
    ("flipped_byte", "damaged or altered"),
    ("garbage_rehashed", "not a sentencepiece model"),
    ("not_a_tensor", "1-D uint8 tensor"),
    ("other_pieces", "pieces differ from the model file's vocabulary"),
])
def test_a_tampered_or_garbage_tokenizer_is_refused_naming_the_file(bpe, tmp_path, how, needle):
    path = tmp_path / f"{how}.pt"
    torch.save(_broken(_bundle(bpe), how), path)
    with pytest.raises(ModelFileError, match=rf"{how}\.pt: refused: its subword tokenizer is not usable: .*{needle}"):
        load_model(path)


def test_model_bundle_refuses_a_vocab_that_is_not_the_tokenizers(bpe):
    torch.manual_seed(0)
    model = build_recognizer(FeatureConfig(), len(bpe), hidden_size=16, num_layers=1, dropout=0.0)
    with pytest.raises(ValueError, match="vocab is not the tokenizer's"):
        model_bundle(model, bpe.vocab[:-1] + ["x"], ModelConfig(hidden_size=16, num_layers=1), tokenizer=bpe)
