"""training.source_errors: a prepared split's sources joined with a report, errors counted per source video."""

import json

from training.source_errors import clips_with_sources, error_lines, read_split, source_errors


def _clip(group: str, label: int, score: float) -> dict:
    return {"video": f"{group}-{label}-{score}", "label": label, "score": score, "group": group}


ROWS = [
    {"fold": 0, "threshold": 0.5, "clips": [_clip("a", 1, 0.9), _clip("a", 1, 0.2), _clip("a", 0, 0.1),
                                             _clip("b", 0, 0.7)]},
    {"fold": 1, "threshold": 0.8, "clips": [_clip("c", 1, 0.85), _clip("c", 0, 0.7)]},
]  # fmt: skip


def test_the_split_is_read_from_beside_the_folder_and_anything_else_is_none(tmp_path):
    (tmp_path / "test").mkdir()
    assert read_split(tmp_path / "test") is None  # none written
    (tmp_path / "split.json").write_text("{not json")
    assert read_split(tmp_path / "test") is None
    (tmp_path / "split.json").write_text(json.dumps({"clips": [{"path": "test/anomaly/a.mp4"}]}))
    assert read_split(tmp_path / "test") == {"clips": [{"path": "test/anomaly/a.mp4"}]}


def test_a_reports_videos_get_their_source_and_an_unlisted_clip_is_its_own_source():
    split = {"clips": [{"path": "test/anomaly/a.mp4", "source": "fight/a.mp4", "group": "hall"},
                       {"path": "val/anomaly/a.mp4", "source": "fight/other.mp4", "group": "yard"}]}  # fmt: skip
    videos = [
        {"video": "anomaly/a.mp4", "label": 1, "score": 0.25},
        {"video": "normal/b.mp4", "label": 0, "score": 0.5},
    ]
    assert clips_with_sources(split, "test", videos) == [
        {"video": "fight/a.mp4", "label": 1, "score": 0.25, "group": "hall"},
        {"video": "normal/b.mp4", "label": 0, "score": 0.5, "group": "normal/b.mp4"},
    ]


def test_errors_are_counted_per_source_at_each_rows_own_threshold_most_first():
    errors = source_errors(ROWS)
    assert [s["group"] for s in errors] == ["a", "b", "c"]
    a, b, c = errors
    assert (a["fights"], a["missed"], a["calm"], a["alerted"]) == (2, 1, 1, 0)
    assert (b["calm"], b["alerted"], b["fold"]) == (1, 1, 0)
    assert (c["missed"], c["alerted"], c["fold"]) == (0, 0, 1)  # 0.7 is calm at row 1's 0.8


def test_the_lines_name_the_worst_sources_with_their_fold_when_there_is_one():
    assert error_lines(ROWS, limit=1) == [
        "errors by source video: 2 of 3 sources have one, the 1 with the most",
        "  a (fold 0): 1 of 2 fights missed, 0 of 1 calm clips alerted",
    ]
    one_set = [{"threshold": 0.5, "clips": ROWS[0]["clips"]}]  # evaluate's: no folds
    assert error_lines(one_set)[1:] == [
        "  a: 1 of 2 fights missed, 0 of 1 calm clips alerted",
        "  b: 0 of 0 fights missed, 1 of 1 calm clips alerted",
    ]
    clean = [{"threshold": 0.5, "clips": [_clip("a", 1, 0.9)]}]
    assert error_lines(clean) == ["errors by source video: 0 of 1 sources have one"]
