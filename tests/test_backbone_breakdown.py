"""benchmarks/backbone_breakdown.py: oneDNN's convolution log is parsed into the right FLOPs per pass."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from benchmarks import backbone_breakdown

ROOT = Path(__file__).resolve().parents[1]


def test_conv_flops_from_descriptor():
    desc = "mb256_ic16oc32_ih32oh16kh3sh2dh0ph1_iw32ow16kw3sw2dw0pw1"
    assert backbone_breakdown.conv_flops(desc) == 2 * 256 * 16 * 32 * 16 * 16 * 3 * 3
    grouped = "mb8_g4ic16oc16_ih8oh8kh3sh1dh0ph1_iw8ow8kw3sw1dw0pw1"  # 4 groups: each output sums 16 / 4 inputs
    assert backbone_breakdown.conv_flops(grouped) == 2 * 8 * 16 * 64 * 9 * 4
    with pytest.raises(ValueError, match="descriptor"):
        backbone_breakdown.conv_flops("not a descriptor")


@pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="needs oneDNN")
def test_breakdown_matches_flop_counter(tmp_path):
    """End to end on Conv-4: the forward convolutions oneDNN logs add up to FlopCounterMode's count."""
    out = tmp_path / "b.json"
    subprocess.run([sys.executable, "-m", "benchmarks.backbone_breakdown", "--arch", "conv4",
                    "--views", "8", "--threads", "1", "--precision", "fp32", "--steps", "2", "--warmup", "1",
                    "--out", str(out)], check=True, capture_output=True, cwd=ROOT)
    result = json.loads(out.read_text())
    assert result["step_views_per_s"] > 0
    assert any(r["op"].startswith("convolution") for r in result["ops"])
    passes = result["conv_passes"]
    assert {"forward", "backward weights"} <= set(passes)

    from rr_zoo.models import build_backbone
    model = build_backbone("conv4").to(memory_format=torch.channels_last)
    x = torch.randn(8, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    with FlopCounterMode(display=False) as counter:
        model(x)
    expected = counter.get_flop_counts()["Global"][torch.ops.aten.convolution]
    logged = sum(r["flops"] for r in result["convolutions"] if r["pass"] == "forward") / 2  # 2 timed steps
    assert logged == expected
