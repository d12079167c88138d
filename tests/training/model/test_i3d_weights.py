"""Loading I3D checkpoints in the published layout, and inflating 2D Inception-v1 weights."""

import pytest
import torch
import torch.nn.functional as F

from training.model.i3d import InceptionI3d, Unit3D
from training.model.i3d_weights import LoadReport, inflate_from_2d, load_i3d_file, load_i3d_state_dict

TINY = 1 / 16


def _randomised(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A state dict with every float tensor random, so a load that skips something shows."""
    gen = torch.Generator().manual_seed(1)
    return {
        k: (torch.rand(v.shape, generator=gen) + 0.5 if v.is_floating_point() else v.clone())
        for k, v in model.state_dict().items()
    }


def _assert_loaded(model: torch.nn.Module, state_dict: dict[str, torch.Tensor]) -> None:
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, state_dict[key], msg=key)


def test_full_width_state_dict_loads_with_nothing_missing_or_unexpected(tmp_path):
    saved = _randomised(InceptionI3d())
    path = tmp_path / "rgb_like.pt"
    torch.save(saved, path)
    model = InceptionI3d()
    report = load_i3d_state_dict(model, torch.load(path, weights_only=True))
    assert report == LoadReport(missing=(), unexpected=(), mismatched=())
    _assert_loaded(model, saved)


def test_renamed_key_is_named_in_the_error():
    saved = _randomised(InceptionI3d(width_multiplier=TINY))
    saved["Mixed_4c.b1b.conv3d.kernel"] = saved.pop("Mixed_4c.b1b.conv3d.weight")
    with pytest.raises(ValueError) as err:
        load_i3d_state_dict(InceptionI3d(width_multiplier=TINY), saved)
    message = str(err.value)
    assert "1 missing keys (Mixed_4c.b1b.conv3d.weight)" in message
    assert "1 unexpected keys (Mixed_4c.b1b.conv3d.kernel)" in message


def test_many_bad_keys_are_counted_and_the_first_few_named():
    saved = {f"extra.{i}": torch.zeros(1) for i in range(9)}
    saved.update(_randomised(InceptionI3d(width_multiplier=TINY)))
    with pytest.raises(ValueError, match=r"9 unexpected keys \(extra\.0, .*\(9 in all\)"):
        load_i3d_state_dict(InceptionI3d(width_multiplier=TINY), saved)


def test_wrong_width_is_reported_as_shape_mismatches():
    saved = _randomised(InceptionI3d(width_multiplier=1 / 8))
    with pytest.raises(ValueError, match=r"width_multiplier=0.0625.*shape mismatches \(Conv3d_1a_7x7"):
        load_i3d_state_dict(InceptionI3d(width_multiplier=TINY), saved)


def test_data_parallel_prefix_loads():
    saved = _randomised(InceptionI3d(width_multiplier=TINY))
    model = InceptionI3d(width_multiplier=TINY)
    report = load_i3d_state_dict(model, {f"module.{k}": v for k, v in saved.items()})
    assert report.ok
    _assert_loaded(model, saved)


def test_capitalised_logits_prefix_loads():
    saved = _randomised(InceptionI3d(width_multiplier=TINY))
    renamed = {k.replace("logits.", "Logits.", 1): v for k, v in saved.items()}
    model = InceptionI3d(width_multiplier=TINY)
    assert load_i3d_state_dict(model, renamed).ok
    _assert_loaded(model, saved)


def test_checkpoint_without_batch_counters_loads():
    saved = _randomised(InceptionI3d(width_multiplier=TINY))
    old = {k: v for k, v in saved.items() if not k.endswith("num_batches_tracked")}  # saved by PyTorch < 0.4
    assert load_i3d_state_dict(InceptionI3d(width_multiplier=TINY), old).ok


def test_non_strict_skips_another_class_count_and_loads_the_rest():
    saved = _randomised(InceptionI3d(width_multiplier=TINY, num_classes=157))
    model = InceptionI3d(width_multiplier=TINY, num_classes=400)
    logits_before = model.logits.conv3d.weight.clone()
    report = load_i3d_state_dict(model, saved, strict=False)
    assert [m.split(":")[0] for m in report.mismatched] == ["logits.conv3d.weight", "logits.conv3d.bias"]
    torch.testing.assert_close(model.logits.conv3d.weight, logits_before)
    torch.testing.assert_close(model.Mixed_5c.b0.conv3d.weight, saved["Mixed_5c.b0.conv3d.weight"])


def test_load_file_reads_a_wrapped_state_dict(tmp_path):
    saved = _randomised(InceptionI3d(width_multiplier=TINY))
    path = tmp_path / "ckpt.pt"
    torch.save({"state_dict": saved, "epoch": 3}, path)
    model = InceptionI3d(width_multiplier=TINY)
    assert load_i3d_file(model, path).ok
    _assert_loaded(model, saved)


def test_load_file_names_a_missing_or_unreadable_file(tmp_path):
    with pytest.raises(ValueError, match="nope.pt: no such I3D weights file"):
        load_i3d_file(InceptionI3d(width_multiplier=TINY), tmp_path / "nope.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match="junk.pt: not a readable torch weights file"):
        load_i3d_file(InceptionI3d(width_multiplier=TINY), junk)


def _as_2d(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A 2D Inception-v1 state dict in the accepted layout: random 4D conv kernels, random BN parameters."""
    gen = torch.Generator().manual_seed(2)
    out = {}
    for key, value in model.state_dict().items():
        if not value.is_floating_point():
            continue
        shape = value.shape[:2] + value.shape[3:] if value.dim() == 5 else value.shape
        out[key] = torch.randn(shape, generator=gen) * 0.2 + (1.0 if key.endswith("running_var") else 0.0)
    return out


def _unit_2d(unit: Unit3D, frame: torch.Tensor, weight_2d: torch.Tensor) -> torch.Tensor:
    """The 2D unit the 3D one was inflated from, on one frame (N, C, H, W), with the same spatial padding."""
    conv = unit.conv3d
    pad = (
        unit.pad.padding[:4]
        if isinstance(unit.pad, torch.nn.ConstantPad3d)
        else [conv.padding[2]] * 2 + [conv.padding[1]] * 2
    )
    y = F.conv2d(F.pad(frame, pad), weight_2d, stride=conv.stride[1:])
    bn = unit.bn
    return F.relu(F.batch_norm(y, bn.running_mean, bn.running_var, bn.weight, bn.bias, eps=bn.eps))


@pytest.mark.parametrize("endpoint", ["Conv3d_1a_7x7", "Conv3d_2c_3x3"])
def test_inflated_unit_on_a_constant_clip_equals_the_2d_unit_on_one_frame(endpoint):
    model = InceptionI3d(width_multiplier=TINY).eval()
    weights_2d = _as_2d(model)
    report = inflate_from_2d(model, weights_2d)
    assert report.ok
    unit = getattr(model, endpoint)
    frame = torch.randn(1, unit.conv3d.in_channels, 32, 32)
    clip = frame.unsqueeze(2).repeat(1, 1, 16, 1, 1)  # (1, C, 16, 32, 32), the same frame 16 times
    with torch.no_grad():
        out_3d = unit(clip)  # (1, C', T', H', W')
        out_2d = _unit_2d(unit, frame, weights_2d[f"{endpoint}.conv3d.weight"])
    # Frames whose temporal window lies inside the clip (away from the zero padding at either end).
    k, s = unit.conv3d.kernel_size[0], unit.conv3d.stride[0]
    front = (k - s) // 2
    inside = [t for t in range(out_3d.shape[2]) if t * s - front >= 0 and t * s - front + k <= clip.shape[2]]
    assert len(inside) >= 4
    for t in inside:
        torch.testing.assert_close(out_3d[:, :, t], out_2d, rtol=1e-4, atol=1e-5)


def test_inflation_copies_batchnorm_and_divides_kernels_by_time():
    model = InceptionI3d(width_multiplier=TINY)
    weights_2d = _as_2d(model)
    inflate_from_2d(model, {f"module.{k}": v for k, v in weights_2d.items()})
    w3d = model.Mixed_3b.b1b.conv3d.weight  # (O, I, 3, 3, 3)
    for t in range(3):
        torch.testing.assert_close(w3d[:, :, t] * 3, weights_2d["Mixed_3b.b1b.conv3d.weight"])
    torch.testing.assert_close(model.Mixed_3b.b1b.bn.running_var, weights_2d["Mixed_3b.b1b.bn.running_var"])
    torch.testing.assert_close(model.logits.conv3d.bias, weights_2d["logits.conv3d.bias"])


def test_inflation_refuses_kernels_of_another_size():
    model = InceptionI3d(width_multiplier=TINY)
    weights_2d = _as_2d(model)
    weights_2d["Conv3d_1a_7x7.conv3d.weight"] = torch.zeros(4, 3, 5, 5)
    with pytest.raises(
        ValueError, match=r"Conv3d_1a_7x7.conv3d.weight: \(4, 3, 5, 5\) vs model \(4, 3, 7, 7, 7\)"
    ):
        inflate_from_2d(model, weights_2d)
