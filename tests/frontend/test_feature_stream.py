"""The front end piece by piece equals the front end over the whole signal, for any cut of the samples."""

import pytest
import torch

from asr.frontend.features import FeatureConfig, FeatureExtractor
from asr.frontend.streaming import FeatureStream, StreamingError


def _extractor(cfg: FeatureConfig) -> FeatureExtractor:
    fe = FeatureExtractor(cfg)
    g = torch.Generator().manual_seed(0)
    fe.set_stats(torch.randn(cfg.frame_dim, generator=g), torch.rand(cfg.frame_dim, generator=g) + 0.5)
    return fe


def _streamed(fe: FeatureExtractor, wave: torch.Tensor, sizes) -> torch.Tensor:
    stream, out, i = FeatureStream(fe), [], 0
    for n in sizes:
        out.append(stream.push(wave[i:i + n]))
        i += n
    out.append(stream.push(wave[i:]))
    out.append(stream.finish())
    return torch.cat(out)


@pytest.mark.parametrize("cfg", [FeatureConfig(), FeatureConfig(n_mfcc=13, deltas=2),
                                 FeatureConfig(stack=4, subsample=2, deltas=1), FeatureConfig(stack=1, subsample=1)],
                         ids=["mfcc40", "mfcc13_deltas", "stack4_sub2", "no_stacking"])
@pytest.mark.parametrize("num_samples", [150, 400, 401, 4321, 16000])
def test_random_pieces_give_the_whole_signal_features(cfg, num_samples):
    fe = _extractor(cfg)
    g = torch.Generator().manual_seed(num_samples)
    wave = 0.1 * torch.randn(num_samples, generator=g)
    offline, lengths = fe(wave[None], torch.tensor([num_samples]))
    sizes = torch.randint(1, 2500, (40,), generator=g).tolist()
    streamed = _streamed(fe, wave, sizes)
    assert streamed.shape == offline[0].shape and int(lengths) == len(streamed)
    torch.testing.assert_close(streamed, offline[0], atol=5e-5, rtol=1e-5)


def test_one_second_in_10_ms_pieces_gives_33_frames_as_they_become_final():
    stream = FeatureStream(_extractor(FeatureConfig()))
    counts = [len(stream.push(torch.zeros(160))) for _ in range(100)]
    # frame j stacks MFCC frames 3j..3j+2, so it needs samples up to (3j + 2) * 160 + 400 = 480j + 720
    assert counts[:5] == [0, 0, 0, 0, 1] and counts[7:10] == [1, 0, 0]
    assert sum(counts) == 32 and len(stream.finish()) == 1  # the last one is the end rule's (replicated frames)


def test_utterance_mean_normalisation_is_refused():
    with pytest.raises(StreamingError, match="features.cmn=utterance"):
        FeatureStream(_extractor(FeatureConfig(cmn="utterance")))
