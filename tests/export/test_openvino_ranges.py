"""OpenVINO INT8 keeps the rare large activations of the calibration set (min/max ranges, not averaged ones).

An anomaly detector's signal is exactly such a rare activation: here one calibration item in 64 drives the
hidden layer 40x harder than the rest, as a fight drives the motion channels; its INT8 output must stay close
to FP32 instead of being clipped to the calm items' range.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from export.openvino_int8 import quantize_ir


@pytest.fixture(scope="module")
def spiky(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ranges")
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.ReLU(), torch.nn.Linear(32, 4)).eval()
    onnx_path = tmp / "net.onnx"
    torch.onnx.export(net, (torch.zeros(1, 16),), str(onnx_path), input_names=["x"], dynamo=False)
    rng = np.random.default_rng(0)
    items = [rng.normal(0, 0.1, (1, 16)).astype(np.float32) for _ in range(63)]
    items.append(items[0] * 40)  # the rare, strong one
    xml = tmp / "net_int8.xml"
    settings = quantize_ir(onnx_path, xml, items, "x")
    return net, xml, items, settings


def test_a_rare_strong_calibration_item_is_not_clipped(spiky):
    import openvino as ov

    net, xml, items, settings = spiky
    assert settings["activation_ranges"] == "minmax"
    compiled = ov.Core().compile_model(str(xml), "CPU")
    x = items[-1]
    int8 = compiled({"x": x})[compiled.outputs[0]]
    with torch.no_grad():
        fp32 = net(torch.from_numpy(x)).numpy()
    assert np.linalg.norm(int8 - fp32) / np.linalg.norm(fp32) < 0.05


def test_weights_use_seven_bits_so_cpus_without_vnni_do_not_saturate(spiky):
    """u8 x s8 pairs summed in 16 bits (AVX2, AVX-512 without VNNI) overflow with full-range int8 weights."""
    import openvino as ov

    _, xml, _, settings = spiky
    assert settings["overflow_fix"] == "enable"
    model = ov.Core().read_model(str(xml))
    weights = [
        op.get_data()
        for op in model.get_ops()
        if op.get_type_name() == "Constant" and op.get_data().dtype == np.int8
    ]
    assert len(weights) == 2  # both Linear layers, not only the first
    assert max(int(np.abs(w.astype(np.int16)).max()) for w in weights) <= 64
