"""The GPU path: the same numbers and transcripts as on the CPU.

These run only where CUDA is available (CI has no GPU; they are skipped there with that
reason). They check what can differ on a GPU: cuDNN's recurrent kernels against the CPU
ones, exact padding with the GPU's index kernels, training end to end on the device, and a
GPU-trained model file that loads and transcribes the same on the CPU.
"""

from __future__ import annotations

import pytest
import torch
from conftest import TONE_TEXTS, tiny_settings, write_tone_corpus

from asr.data.manifest import read_manifest
from asr.frontend.features import FeatureConfig
from asr.inference.evaluate import recognize
from asr.models.acoustic import build_recognizer
from asr.models.checkpoint import load_model

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.fixture(autouse=True)
def _full_precision():
    """TF32 would round the GPU's matrix products to 10-bit mantissas; compare in true fp32."""
    old = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old


def _waves(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    lens = torch.tensor([16000, 9000, 12345])
    waves = torch.zeros(3, int(lens.max()))
    for i, n in enumerate(lens.tolist()):
        waves[i, :n] = 0.1 * torch.randn(n, generator=g)
    return waves, lens


@pytest.mark.parametrize("kind", [dict(rnn_type="lstm"), dict(rnn_type="gru"), dict(rnn_type="lstm", proj_size=24)])
def test_gpu_forward_equals_cpu_forward_and_padding_stays_exact(kind):
    torch.manual_seed(0)
    model = build_recognizer(FeatureConfig(), 29, hidden_size=48, num_layers=3, dropout=0.0, **kind).eval()
    waves, lens = _waves()
    with torch.inference_mode():
        cpu, cpu_lens = model(waves, lens)
        model.cuda()
        gpu, gpu_lens = model(waves.cuda(), lens.cuda())
        alone, _ = model(waves[1:2, : lens[1]].cuda(), lens[1:2].cuda())  # the shortest item, unpadded
    assert torch.equal(gpu_lens.cpu(), cpu_lens)
    for i, n in enumerate(cpu_lens.tolist()):  # frames past an item's length are padding, not output
        assert torch.allclose(gpu[i, :n].cpu(), cpu[i, :n], atol=1e-4), f"item {i}: GPU differs from CPU"
    n1 = int(cpu_lens[1])
    assert torch.allclose(alone[0, :n1], gpu[1, :n1], atol=1e-5), "padding changed an item's output on the GPU"


def test_training_on_gpu_learns_and_its_model_file_transcribes_the_same_on_cpu(tmp_path):
    from asr.training.train import train

    manifest = write_tone_corpus(tmp_path / "corpus", TONE_TEXTS)
    summary = train(tiny_settings(manifest, device="cuda"), tmp_path / "run")
    assert summary["best_dev_wer"] == 0.0
    model, tokenizer, _ = load_model(tmp_path / "run" / "model.pt")  # map_location cpu: loads without a GPU
    assert next(model.parameters()).device.type == "cpu"
    utts = read_manifest(manifest)
    on_cpu = [h.text for h in recognize(model, tokenizer, utts, device="cpu")]
    on_gpu = [h.text for h in recognize(model.cuda(), tokenizer, utts, device="cuda")]
    assert on_cpu == on_gpu == [u.text for u in utts]
