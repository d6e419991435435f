"""Training end to end on the tone corpus: WER reaches 0, resume is exact, model files round-trip."""

import dataclasses
import json

import pytest
import torch
from conftest import tiny_settings, train_killed_mid_epoch

from asr.data.manifest import read_manifest
from asr.inference.evaluate import evaluate, recognize
from asr.models.checkpoint import ModelFileError, load_model, safe_load
from asr.training.train import train


def test_overfit_drives_wer_to_zero_and_model_file_reproduces_it(tone_corpus, tmp_path):
    summary = train(tiny_settings(tone_corpus), tmp_path / "run")
    assert summary["best_dev_wer"] == 0.0
    model, tokenizer, bundle = load_model(tmp_path / "run" / "model.pt")
    result = evaluate(model, tokenizer, read_manifest(tone_corpus), out_dir=tmp_path / "eval")
    assert result["wer"] == 0.0 and result["cer"] == 0.0
    assert json.loads((tmp_path / "eval" / "summary.json").read_text())["wer"] == 0.0
    # the model file is self-describing: vocabulary, feature settings and statistics inside
    assert bundle["vocab"][0] == "<blank>" and set(bundle["vocab"][1:]) == set("abc ")
    assert bundle["features"]["n_mfcc"] == 40
    assert not torch.allclose(bundle["state_dict"]["features.mean"], torch.zeros(40))
    log = [json.loads(line) for line in (tmp_path / "run" / "train_log.jsonl").read_text().splitlines()]
    assert len(log) == 40 and log[-1]["train_loss"] < log[0]["train_loss"] / 5
    # memory is logged per epoch (benchmarks/train_memory.py reads it): resident <= peak, both plausible
    assert all(100 < e["rss_mb"] <= e["peak_rss_mb"] < 100_000 for e in log)


def test_resume_continues_exactly(tone_corpus, tmp_path):
    straight = tiny_settings(tone_corpus, max_epochs=4)
    train(straight, tmp_path / "straight")
    # same run, interrupted after 2 epochs, then resumed to 4
    train(dataclasses.replace(straight, trainer=dataclasses.replace(straight.trainer, max_epochs=2)),
          tmp_path / "resumed")
    train(dataclasses.replace(straight, trainer=dataclasses.replace(straight.trainer, resume=True)),
          tmp_path / "resumed")
    a = safe_load(tmp_path / "straight" / "checkpoints" / "last.pt")
    b = safe_load(tmp_path / "resumed" / "checkpoints" / "last.pt")
    assert a["state"]["step"] == b["state"]["step"]
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    logs = [(tmp_path / d / "train_log.jsonl").read_text() for d in ("straight", "resumed")]
    assert [json.loads(x)["train_loss"] for x in logs[0].splitlines()] == \
           [json.loads(x)["train_loss"] for x in logs[1].splitlines()]


def test_resume_mid_epoch_continues_exactly(tone_corpus, tmp_path, monkeypatch):

    s = tiny_settings(tone_corpus, max_epochs=2, checkpoint_every_steps=1)
    train(s, tmp_path / "straight")
    train_killed_mid_epoch(s, tmp_path / "cut", monkeypatch)  # two batches into the second epoch
    ckpt = safe_load(tmp_path / "cut" / "checkpoints" / "last.pt")
    assert (ckpt["state"]["epoch"], ckpt["state"]["batches_done"]) == (1, 2)
    train(dataclasses.replace(s, trainer=dataclasses.replace(s.trainer, resume=True)), tmp_path / "cut")
    a = safe_load(tmp_path / "straight" / "checkpoints" / "last.pt")
    b = safe_load(tmp_path / "cut" / "checkpoints" / "last.pt")
    assert a["state"]["step"] == b["state"]["step"]
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])


def test_resume_without_checkpoint_is_a_clear_error(tone_corpus, tmp_path):
    from asr.config.schema import ConfigError

    with pytest.raises(ConfigError, match="no checkpoint"):
        train(tiny_settings(tone_corpus, resume=True, max_epochs=1), tmp_path / "nothing")


def test_pickled_model_file_is_refused(tmp_path):
    class Payload:
        def __reduce__(self):
            return (print, ("this must never run",))

    evil = tmp_path / "evil.pt"
    torch.save({"format": "asr-model", "payload": Payload()}, evil)
    with pytest.raises(ModelFileError, match="refused"):
        load_model(evil)
    with pytest.raises(ModelFileError, match="not found"):
        load_model(tmp_path / "missing.pt")
    torch.save({"format": "something-else"}, tmp_path / "other.pt")
    with pytest.raises(ModelFileError, match="not an asr model file"):
        load_model(tmp_path / "other.pt")


def test_resume_mid_epoch_with_waveform_augmentation_is_exact(tone_corpus, tmp_path, monkeypatch):
    """Speed, rooms, noise and volume are drawn from (seed, epoch, utterance): a resumed run sees the same audio."""
    from asr.config.schema import AugmentConfig
    from asr.training import checkpoints

    s = tiny_settings(tone_corpus, max_epochs=2, checkpoint_every_steps=1)
    s = dataclasses.replace(s, augment=AugmentConfig(spec_augment=True, speed_perturb=True, noise=True,
                                                     noise_prob=1.0, volume=True, reverb=True, reverb_prob=0.5))
    train(s, tmp_path / "straight")
    real_save = checkpoints.save_checkpoint

    def save_then_die(ckpt_dir, model, optimizer, scheduler, sampler, state, keep):
        real_save(ckpt_dir, model, optimizer, scheduler, sampler, state, keep)
        if state.epoch == 1 and state.batches_done == 1:
            raise KeyboardInterrupt("simulated kill")

    monkeypatch.setattr(checkpoints, "save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        train(s, tmp_path / "cut")
    monkeypatch.undo()
    train(dataclasses.replace(s, trainer=dataclasses.replace(s.trainer, resume=True)), tmp_path / "cut")
    a = safe_load(tmp_path / "straight" / "checkpoints" / "last.pt")
    b = safe_load(tmp_path / "cut" / "checkpoints" / "last.pt")
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    # and the augmentation did change training: without it the weights differ
    plain = dataclasses.replace(s, augment=dataclasses.replace(s.augment, speed_perturb=False, noise=False,
                                                                volume=False, reverb=False))
    train(plain, tmp_path / "plain")
    c = safe_load(tmp_path / "plain" / "checkpoints" / "last.pt")
    assert not all(torch.equal(a["model"][k], c["model"][k]) for k in a["model"])


def test_average_of_last_epochs_is_written_and_scored(tone_corpus, tmp_path):
    from asr.cli.average import average_main

    s = tiny_settings(tone_corpus, max_epochs=5, keep_checkpoints=3, average_last=3)
    summary = train(s, tmp_path / "run")
    ckpts = [safe_load(tmp_path / "run" / "checkpoints" / f"epoch-{e}.pt")["model"] for e in (3, 4, 5)]
    avg = safe_load(tmp_path / "run" / "model_avg.pt")
    for k, v in avg["state_dict"].items():
        torch.testing.assert_close(v, sum(c[k] for c in ckpts) / 3, rtol=1e-6, atol=1e-7)
    assert avg["metrics"]["averaged_from"] == ["epoch-3.pt", "epoch-4.pt", "epoch-5.pt"]
    assert 0.0 <= summary["averaged_dev_wer"] <= 1.0 and summary["averaged_model"].endswith("model_avg.pt")
    model, _, _ = load_model(tmp_path / "run" / "model_avg.pt")  # a complete model file
    assert model.acoustic.output.out_features == 5
    assert average_main([str(tmp_path / "run"), "--last", "2", "--output", str(tmp_path / "two.pt")]) == 0
    two = safe_load(tmp_path / "two.pt")["state_dict"]
    k = "acoustic.output.weight"
    torch.testing.assert_close(two[k], (ckpts[1][k] + ckpts[2][k]) / 2)
    assert average_main([str(tmp_path / "run"), "--last", "4"]) == 2  # only 3 epochs kept


def test_average_state_dicts_hand_built():
    from asr.models.checkpoint import average_state_dicts

    states = [{"w": torch.tensor([1.0, 2.0]), "n": torch.tensor(3)}, {"w": torch.tensor([3.0, 6.0]),
                                                                      "n": torch.tensor(4)}]
    out = average_state_dicts(states)
    assert out["w"].tolist() == [2.0, 4.0] and out["n"].item() == 4  # integers come from the last state
    with pytest.raises(ModelFileError, match="b.pt"):
        average_state_dicts([states[0], {"w": torch.zeros(3), "n": torch.tensor(1)}], ["a.pt", "b.pt"])


def test_two_weighted_corpora_train_together_and_each_dev_set_is_scored(tmp_path, caplog):
    import logging

    from conftest import TONE_TEXTS, write_tone_corpus

    a = write_tone_corpus(tmp_path / "a", TONE_TEXTS[:4], name="a")
    b = write_tone_corpus(tmp_path / "b", TONE_TEXTS[4:], name="b", seed=1)
    s = tiny_settings(a, max_epochs=3)
    s = dataclasses.replace(s, data=dataclasses.replace(s.data, train_manifest=[str(a), str(b)],
                                                        train_weights=[1.0, 2.0], dev_manifest=[str(a), str(b)]))
    seen = []
    import asr.training.inputs

    real = asr.training.inputs.collate
    asr.training.inputs.collate = lambda items: seen.append([it["utt_id"] for it in items]) or real(items)
    try:
        with caplog.at_level(logging.INFO, logger="asr.training"):
            summary = train(s, tmp_path / "run")
    finally:
        asr.training.inputs.collate = real
    ids = [u for batch in seen for u in batch]
    from_b = sum(u.startswith("audio/b_") for u in ids)
    assert len(ids) == 3 * (4 + 2 * 4) and from_b == 3 * 8  # corpus b, weight 2: twice per epoch
    log = [json.loads(line) for line in (tmp_path / "run" / "train_log.jsonl").read_text().splitlines()]
    sets = log[-1]["dev_sets"]
    assert list(sets) == [str(a), str(b)]
    low, high = sorted(v["wer"] for v in sets.values())
    assert low <= log[-1]["dev_wer"] <= high  # the best epoch is chosen on both sets together
    assert summary["best_dev_sets"] == next(e["dev_sets"] for e in log if e["epoch"] == summary["best_epoch"])
    assert any(f"train corpus {b}: weight 2" in r.getMessage() for r in caplog.records)


def test_a_bpe_model_trains_decodes_and_round_trips_through_its_model_file(tone_corpus, tmp_path):
    """data.tokenizer=bpe end to end: pieces as CTC targets, greedy WER 0 on the (train = dev) tone corpus."""
    from asr.data.tokenizer import PieceTokenizer

    s = tiny_settings(tone_corpus, max_epochs=60)  # a few more epochs than characters need: 6 s
    s = dataclasses.replace(s, data=dataclasses.replace(s.data, tokenizer="bpe", vocab_size=9))
    summary = train(s, tmp_path / "run")
    model, tokenizer, bundle = load_model(tmp_path / "run" / "model.pt")
    assert isinstance(tokenizer, PieceTokenizer) and tokenizer.kind == "bpe" and len(tokenizer) == 10
    assert any(len(p.lstrip("\u2581")) > 1 for p in tokenizer.vocab[2:])  # merged pieces, not just characters
    assert bundle["config"]["data"]["tokenizer"] == "bpe" and bundle["tokenizer"]["kind"] == "bpe"
    utts = read_manifest(tone_corpus)
    pieces = sum(len(tokenizer.encode(u.text)) for u in utts)
    assert pieces < sum(len(u.text) for u in utts)  # fewer CTC targets than characters
    result = evaluate(model, tokenizer, utts, out_dir=tmp_path / "eval")
    assert summary["best_dev_wer"] == result["wer"] == 0.0 and result["cer"] == 0.0
    # the Python API and asr transcribe build words from the pieces, with times and confidences
    from asr.api import Recognizer
    from asr.inference.export import export_onnx

    rec = Recognizer.load(tmp_path / "run" / "model.pt")
    for u in utts[:3]:
        for decoder in ("greedy", "beam"):
            t = rec.transcribe(u.audio_path, decoder=decoder)[0]
            assert t.text == u.text and [w.text for w in t.words] == u.text.split()
            assert all(0 <= w.start_s < w.end_s <= t.duration_s and 0 < w.confidence <= 1 for w in t.words)
    # the ONNX export carries the sentencepiece model: onnxruntime transcribes it as the model file does
    import onnx

    from asr.inference.onnx_runtime import OnnxRecognizer

    export_onnx(tmp_path / "run" / "model.pt", tmp_path / "model.onnx", test_manifest=tone_corpus)
    onnx_model = OnnxRecognizer(tmp_path / "model.onnx", threads=1)
    assert isinstance(onnx_model.tokenizer, PieceTokenizer) and onnx_model.tokenizer.vocab == tokenizer.vocab
    assert [h.text for h in recognize(onnx_model, onnx_model.tokenizer, utts)] == [u.text for u in utts]
    onnx_rec = Recognizer.load(tmp_path / "model.onnx", runtime="onnx")
    assert [w.text for w in onnx_rec.transcribe(utts[0].audio_path)[0].words] == utts[0].text.split()
    for key, edit, message in [("sha256", "0" * 64, "damaged or altered"), ("model_base64", "@@", "model_base64")]:
        bad = onnx.load(str(tmp_path / "model.onnx"))
        prop = next(p for p in bad.metadata_props if p.key == "tokenizer")
        prop.value = json.dumps({**json.loads(prop.value), key: edit})
        onnx.save(bad, str(tmp_path / "bad.onnx"))
        with pytest.raises(ModelFileError, match=rf"bad.onnx: invalid settings in metadata_props: .*{message}"):
            OnnxRecognizer(tmp_path / "bad.onnx")


def test_augmentation_waits_for_augment_from_epoch(tone_corpus, tmp_path):
    """Before augment.from_epoch the network hears the audio as recorded: no SpecAugment, no waveform part."""
    from asr.config.schema import AugmentConfig

    base = tiny_settings(tone_corpus, max_epochs=2)
    late = AugmentConfig(spec_augment=True, speed_perturb=True, noise=True, noise_prob=1.0, from_epoch=1)
    runs = {"late": dataclasses.replace(base, augment=late),
            "none": dataclasses.replace(base, augment=AugmentConfig(spec_augment=False))}
    weights = {}
    for name, s in runs.items():
        train(s, tmp_path / name)
        weights[name] = [safe_load(tmp_path / name / "checkpoints" / f"epoch-{e}.pt")["model"] for e in (1, 2)]
    first, second = ([w[e] for w in (weights["late"], weights["none"])] for e in (0, 1))
    assert all(torch.equal(first[0][k], first[1][k]) for k in first[1])  # epoch 1: as recorded
    assert not all(torch.equal(second[0][k], second[1][k]) for k in second[1])  # epoch 2: augmented
