import numpy as np
import pytest

from edge_runtime.snippets import frame_to_snippet, num_snippets, snippet_frame_indices, snippet_span


def test_span_and_count():
    assert snippet_span(16, 2) == 32
    assert num_snippets(64, 16) == 4
    assert num_snippets(65, 16) == 5
    assert num_snippets(0, 16) == 0


def test_indices_with_stride_and_padding():
    np.testing.assert_array_equal(snippet_frame_indices(1, 100, 4, 2), [8, 10, 12, 14])
    np.testing.assert_array_equal(snippet_frame_indices(2, 10, 4), [8, 9, 9, 9])


def test_frame_to_snippet():
    np.testing.assert_array_equal(frame_to_snippet(6, 2), [0, 0, 1, 1, 2, 2])


@pytest.mark.parametrize("s, stride", [(0, 1), (4, 0)])
def test_bad_lengths(s, stride):
    with pytest.raises(ValueError):
        snippet_span(s, stride)
