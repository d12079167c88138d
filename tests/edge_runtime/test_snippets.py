import numpy as np
import pytest

from edge_runtime.snippets import (
    complete_snippets,
    frame_to_snippet,
    num_snippets,
    snippet_frame_indices,
    snippet_span,
)


def test_span_and_count():
    assert snippet_span(16, 2) == 32
    assert num_snippets(64, 16) == 4
    # the unfinished tail is left out, as a camera playing the video leaves it
    assert num_snippets(79, 16) == 4
    assert num_snippets(5, 16) == 1  # a video shorter than one snippet has one, padded
    assert num_snippets(0, 16) == 0


def test_whole_clip_snippets_are_a_played_files_complete_ones():
    for n in (5, 16, 31, 32, 33, 100):
        complete = complete_snippets(n, 16)
        assert num_snippets(n, 16) == (complete if complete else 1)


def test_indices_with_stride_and_padding():
    np.testing.assert_array_equal(snippet_frame_indices(1, 100, 4, 2), [8, 10, 12, 14])
    np.testing.assert_array_equal(snippet_frame_indices(2, 10, 4), [8, 9, 9, 9])


def test_frame_to_snippet():
    np.testing.assert_array_equal(frame_to_snippet(6, 2), [0, 0, 1, 1, 2, 2])


@pytest.mark.parametrize("s, stride", [(0, 1), (4, 0)])
def test_bad_lengths(s, stride):
    with pytest.raises(ValueError):
        snippet_span(s, stride)
