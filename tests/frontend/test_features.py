import numpy as np
import pytest
import torch
import torchaudio

from asr.frontend.features import (
    FeatureConfig,
    FeatureExtractor,
    SpecAugment,
    accumulate_stats,
    mfcc_frames,
    model_frames,
    output_frames_for_duration,
    regression_deltas,
    stack_frames,
)


def test_one_second_at_16k_gives_98_frames_then_33_after_stacking():
    fe = FeatureExtractor(FeatureConfig())
    mfcc, lens = fe.mfcc(torch.randn(1, 16000), torch.tensor([16000]))
    assert mfcc.shape == (1, 98, 40) and lens.tolist() == [98]
    feats, out_lens = fe(torch.randn(1, 16000), torch.tensor([16000]))
    assert feats.shape == (1, 33, 120) and out_lens.tolist() == [33]
    assert output_frames_for_duration(FeatureConfig(), 1.0) == 33


@pytest.mark.parametrize("config", [FeatureConfig(), FeatureConfig(n_fft=512), FeatureConfig(stack=4, subsample=4)])
def test_one_frame_count_rule_for_extractor_lengths_and_durations(config):
    fe = FeatureExtractor(config)
    wave_lens = torch.tensor([100, config.fft_length - 1, config.fft_length, config.fft_length + config.hop_length,
                              11999, 16000])
    _, lens = fe.mfcc(torch.randn(len(wave_lens), 16000), wave_lens)
    _, out_lens = fe(torch.randn(len(wave_lens), 16000), wave_lens)
    assert torch.equal(lens, mfcc_frames(wave_lens, config)) and torch.equal(out_lens, fe.output_lengths(wave_lens))
    assert mfcc_frames(wave_lens, config)[:4].tolist() == [1, 1, 1, 2]  # shorter than a frame: padded to one
    for n, frames in zip(wave_lens.tolist(), out_lens.tolist(), strict=True):  # ints follow the same rule
        assert model_frames(n, config) == frames == output_frames_for_duration(config, n / config.sample_rate_hz)
    assert mfcc_frames(16000, FeatureConfig()) == 98 and model_frames(16000, FeatureConfig()) == 33


@pytest.mark.parametrize("deltas,stack,subsample,cmn", [(0, 3, 3, "none"), (2, 3, 3, "none"), (1, 4, 2, "none"),
                                                        (0, 1, 1, "none"), (0, 3, 3, "utterance"),
                                                        (2, 3, 3, "utterance")])
def test_features_of_padded_batch_equal_per_item(deltas, stack, subsample, cmn):
    fe = FeatureExtractor(FeatureConfig(deltas=deltas, stack=stack, subsample=subsample, cmn=cmn))
    torch.manual_seed(0)
    lens = torch.tensor([16000, 11999, 4321])
    waves = torch.randn(3, 16000)
    feats, flens = fe(waves, lens)
    for i in range(3):
        one, one_len = fe(waves[i:i + 1, : lens[i]], lens[i:i + 1])
        assert one_len.item() == flens[i].item()
        torch.testing.assert_close(one[0], feats[i, : flens[i]], rtol=0, atol=1e-5)


def test_utterance_cmn_cancels_gain_that_shifts_c0_without_it():
    torch.manual_seed(3)
    wave = torch.randn(1, 16000) * torch.linspace(0.02, 0.3, 16000)  # a level that moves across the utterance
    quiet = wave * 0.1  # 20 dB down: +(-20 dB) on every log-mel band, all of it in c0 after the DCT
    lens = torch.tensor([16000])
    plain = FeatureExtractor(FeatureConfig(cmn="none"))
    shift = plain.mfcc(quiet, lens)[0] - plain.mfcc(wave, lens)[0]
    torch.testing.assert_close(shift[..., 0], torch.full_like(shift[..., 0], -20.0 * 40 ** 0.5), rtol=0, atol=1e-2)
    torch.testing.assert_close(shift[..., 1:], torch.zeros_like(shift[..., 1:]), rtol=0, atol=1e-3)
    cmn = FeatureExtractor(FeatureConfig(cmn="utterance"))
    loud_f, quiet_f = cmn.mfcc(wave, lens)[0], cmn.mfcc(quiet, lens)[0]
    torch.testing.assert_close(quiet_f, loud_f, rtol=0, atol=1e-2)
    assert loud_f.mean(1).abs().max() < 1e-3  # each coefficient averages to zero over the utterance
    assert loud_f[..., 0].std() > 1.0  # the level's movement within the utterance is kept


def test_unknown_cmn_is_refused_with_the_key_and_choices():
    with pytest.raises(ValueError, match="features.cmn='speaker'.*cmn none or utterance"):
        FeatureConfig(cmn="speaker")


def test_stack_frames_layout():
    x = torch.arange(7, dtype=torch.float32).view(1, 7, 1)  # frames 0..6
    out, lens = stack_frames(x, torch.tensor([7]), stack=3, subsample=3)
    # ceil(7/3) = 3 frames; the last one repeats frame 6 past the end
    assert lens.tolist() == [3]
    assert out[0].tolist() == [[0, 1, 2], [3, 4, 5], [6, 6, 6]]


def test_normalisation_statistics_match_numpy_and_normalise_to_zero_mean_unit_std():
    cfg = FeatureConfig()
    fe = FeatureExtractor(cfg)
    torch.manual_seed(1)
    waves = [torch.randn(n) * s for n, s in [(16000, 0.1), (8000, 0.5), (12345, 0.02)]]
    lens = torch.tensor([len(w) for w in waves])
    batch = torch.nn.utils.rnn.pad_sequence(waves, batch_first=True)
    mean, std, count = accumulate_stats(fe, [(batch, lens)])
    frames = torch.cat([fe.mfcc(w[None], torch.tensor([len(w)]))[0][0] for w in waves]).double().numpy()
    assert count == frames.shape[0] == 98 + 48 + 75
    np.testing.assert_allclose(mean.numpy(), frames.mean(0), rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(std.numpy(), frames.std(0), rtol=1e-4, atol=1e-4)
    fe.set_stats(mean, std)
    cfg1 = FeatureConfig(stack=1, subsample=1)
    fe1 = FeatureExtractor(cfg1)
    fe1.set_stats(mean, std)
    normed = torch.cat([fe1(w[None], torch.tensor([len(w)]))[0][0] for w in waves])
    np.testing.assert_allclose(normed.mean(0).numpy(), 0, atol=1e-4)
    np.testing.assert_allclose(normed.std(0, unbiased=False).numpy(), 1, atol=1e-3)


def test_mfcc_matches_librosa_when_configured_alike():
    librosa = pytest.importorskip("librosa")
    rng = np.random.default_rng(0)
    wave = (0.1 * rng.standard_normal(16000)).astype(np.float32)
    cfg = FeatureConfig(n_fft=400, f_min_hz=0.0)
    ours = FeatureExtractor(cfg).mfcc(torch.from_numpy(wave)[None], torch.tensor([16000]))[0][0].numpy()
    mel = librosa.feature.melspectrogram(y=wave, sr=16000, n_fft=400, hop_length=160, win_length=400, n_mels=40,
                                         center=False, htk=False, fmin=0.0, window="hann", power=2.0)
    log_mel = librosa.power_to_db(mel, amin=1e-10, top_db=None)  # no per-utterance clamp, as in ours
    ref = librosa.feature.mfcc(S=log_mel, n_mfcc=40, norm="ortho").T
    assert ours.shape == ref.shape
    assert np.median(np.abs(ours - ref)) < 1e-3


def test_invalid_feature_settings_name_the_key():
    with pytest.raises(ValueError, match="features.hop_length_ms"):
        FeatureConfig(hop_length_ms=30.0, win_length_ms=25.0)
    with pytest.raises(ValueError, match="features.subsample"):
        FeatureConfig(stack=2, subsample=3)


def test_spec_augment_masks_only_in_training_and_within_limits():
    aug = SpecAugment(freq_masks=1, freq_width=4, time_masks=1, time_width=10, max_time_ratio=0.2)
    x = torch.ones(4, 100, 40)
    lens = torch.tensor([100, 80, 50, 20])
    aug.eval()
    assert torch.equal(aug(x, lens), x)
    aug.train()
    torch.manual_seed(0)
    y = aug(x, lens)
    zero_frames = (y == 0).all(-1).sum(1)  # fully masked frames per utterance
    assert (zero_frames <= torch.tensor([10, 10, 10, 4])).all()
    zero_dims = (y == 0).all(1).sum(-1)
    assert (zero_dims <= 4).all()


def test_regression_deltas_equal_torchaudio_compute_deltas():
    x = torch.randn(3, 17, 5, generator=torch.Generator().manual_seed(0))  # (B, T, F)
    want = torchaudio.functional.compute_deltas(x.transpose(1, 2), win_length=5).transpose(1, 2)
    torch.testing.assert_close(regression_deltas(x, 5), want, rtol=0, atol=1e-6)
