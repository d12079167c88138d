import pytest
import torch

from training.mixup import mix_batch


def _batch(labels, has):
    frame = torch.tensor(labels, dtype=torch.float32)[:, None].repeat(1, 4)
    return {"label": torch.tensor(labels), "frame_labels": frame, "has_frame_labels": torch.tensor(has)}


def test_each_video_is_mixed_with_one_partner_of_the_batch():
    torch.manual_seed(0)
    inputs = torch.arange(6, dtype=torch.float32)[:, None, None].repeat(1, 2, 3)  # video i is all i
    labels = [0.0, 1.0, 0.0, 1.0, 1.0, 0.0]
    mixed_inputs, mixed = mix_batch(inputs, _batch(labels, [True] * 6), alpha=0.4)
    for i in range(6):
        assert torch.allclose(mixed_inputs[i], mixed_inputs[i, 0, 0].expand(2, 3))  # one mix per video
    # lam * x + (1 - lam) * x[permutation]: the batch's sums of inputs and labels are kept
    assert float(mixed_inputs.sum()) == pytest.approx(float(inputs.sum()), rel=1e-5)
    assert float(mixed["label"].sum()) == pytest.approx(sum(labels), rel=1e-5)
    assert torch.allclose(mixed["frame_labels"][:, 0], mixed["label"])
    assert not torch.equal(mixed_inputs, inputs)


def test_the_mixed_label_is_the_inputs_share():
    torch.manual_seed(3)
    inputs = torch.tensor([[0.0], [1.0], [0.0], [1.0]])
    mixed_inputs, mixed = mix_batch(inputs, _batch([0.0, 1.0, 0.0, 1.0], [True] * 4), alpha=1.0)
    assert torch.allclose(mixed_inputs[:, 0], mixed["label"])  # input value == label for every video
    assert not torch.equal(mixed_inputs, inputs)


def test_frame_labels_survive_only_where_both_videos_had_them():
    torch.manual_seed(1)
    inputs = torch.tensor([[0.0], [1.0], [2.0], [3.0]])
    _, mixed = mix_batch(inputs, _batch([0.0, 1.0, 0.0, 1.0], [True, False, True, True]), alpha=1.0)
    assert not bool(mixed["has_frame_labels"].all())  # video 1 lost them in its own mix at least
    assert not bool(mixed["has_frame_labels"][1])


def test_alpha_zero_leaves_the_batch_as_it_is():
    inputs = torch.rand(3, 2)
    batch = _batch([0.0, 1.0, 1.0], [True] * 3)
    same_inputs, same = mix_batch(inputs, batch, alpha=0.0)
    assert same_inputs is inputs and torch.equal(same["label"], batch["label"])
