"""ONNX Runtime and OpenVINO give the same numbers on the same ONNX model."""

import numpy as np

from edge_runtime.backends import create_backend


def test_onnxruntime_and_openvino_agree(tiny_models, snippets, features):
    for path, inputs in ((tiny_models[0], {"snippets": snippets}), (tiny_models[1], {"features": features})):
        ort_out = create_backend("onnxruntime", path, device="CPU").infer(inputs)
        ov_out = create_backend("openvino", path, device="CPU").infer(inputs)
        assert ort_out.keys() == ov_out.keys()
        for name in ort_out:
            np.testing.assert_allclose(ov_out[name], ort_out[name], atol=1e-4, err_msg=name)
