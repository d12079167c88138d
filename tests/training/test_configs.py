import json
import sys

import pytest

from edge_runtime.preprocess import FLOW_CAMERA_MOTIONS, MODALITIES, MOTION_CROPS
from edge_runtime.preprocess_config import INTERPOLATIONS
from training.configs import (
    ADDED_KEYS,
    CONFIG_NAMES,
    INPUT_MODALITIES,
    ConfigError,
    config_from_json,
    config_to_json,
    create_experiment_config,
    get_config,
    load_config,
    save_config,
    to_preprocess_config,
    topk_count,
    validate_config,
)
from training.configs import (
    FLOW_CAMERA_MOTIONS as CONFIG_CAMERA_MOTIONS,
)
from training.configs import (
    INTERPOLATIONS as CONFIG_INTERPOLATIONS,
)


@pytest.mark.parametrize("name", CONFIG_NAMES)
def test_every_preset_is_valid_and_named_after_itself(name):
    cfg = get_config(name)
    assert validate_config(cfg) == cfg
    assert cfg["name"] == name


def test_configs_copies_of_the_runtimes_choices_are_the_same():
    # configs stays numpy-free, so it keeps its own copies of these tuples: they must not drift apart
    assert CONFIG_CAMERA_MOTIONS == FLOW_CAMERA_MOTIONS
    assert CONFIG_INTERPOLATIONS == tuple(sorted(INTERPOLATIONS))
    assert set(INPUT_MODALITIES) == set(MODALITIES)
    for crops in (0, *MOTION_CROPS, 2):
        accepted = _accepted(motion_crops=crops, motion_forest_trees=10, input_modality="flow")
        assert accepted == (crops in MOTION_CROPS)


def _accepted(**overrides) -> bool:
    try:
        create_experiment_config(get_config("surveillance"), **overrides)
    except ConfigError:
        return False
    return True


def test_presets_share_the_same_keys():
    keys = {name: set(get_config(name)) for name in CONFIG_NAMES}
    assert all(k == keys["default"] for k in keys.values())


def test_default_follows_rtfm():
    cfg = get_config("default")
    assert (cfg["clip_length"], cfg["num_snippets"]) == (16, 32)
    assert (cfg["loss_smoothness_weight"], cfg["loss_sparsity_weight"]) == (8e-4, 8e-3)
    assert topk_count(cfg["num_snippets"], cfg["topk_ratio"]) == 3


def test_debug_is_tiny():
    cfg = get_config("debug")
    assert cfg["width_multiplier"] < 0.25
    assert cfg["frame_size"] <= 80 and cfg["clip_length"] == 8
    assert cfg["num_workers"] == 0


def test_debug_trains_on_windows_and_the_published_presets_on_segments():
    assert get_config("debug")["snippet_sampling"] == "window"
    assert {get_config(n)["snippet_sampling"] for n in ("default", "fight", "violence")} == {"segments"}


def test_kinetics_takes_the_published_i3d_input_and_trains_a_small_head():
    cfg = get_config("kinetics")
    assert (cfg["input_modality"], cfg["frame_size"], cfg["width_multiplier"]) == ("rgb", 256, 1.0)
    assert cfg["clip_length"] * cfg["num_snippets"] >= 32 and cfg["frame_rate"] == 15.0
    assert cfg["motion_forest_trees"] == 0 and cfg["snippet_sampling"] == "window"


def test_get_config_returns_a_fresh_copy():
    get_config("default")["epochs"] = 999
    assert get_config("default")["epochs"] != 999


def test_unknown_config_name_lists_the_known_names():
    with pytest.raises(
        ConfigError, match="known configs: default, fight, violence, surveillance, kinetics, debug"
    ):
        get_config("nope")


def test_override_returns_new_dict_and_keeps_base():
    base = get_config("debug")
    cfg = create_experiment_config(base, epochs=7, learning_rate=0.01)
    assert cfg["epochs"] == 7 and cfg["learning_rate"] == 0.01
    assert base["epochs"] == get_config("debug")["epochs"]


def test_unknown_key_names_the_closest_known_key():
    with pytest.raises(ConfigError, match=r"'lerning_rate' \(did you mean 'learning_rate'\?\)"):
        create_experiment_config(get_config("debug"), lerning_rate=0.1)


def test_float_key_accepts_int_and_stores_float():
    cfg = create_experiment_config(get_config("debug"), learning_rate=1)
    assert isinstance(cfg["learning_rate"], float)


@pytest.mark.parametrize(
    "key, value",
    [("epochs", 2.0), ("epochs", True), ("augment_flip", 1), ("learning_rate", "0.1"), ("amp", False)],
)
def test_wrong_types_are_refused_naming_key_and_types(key, value):
    with pytest.raises(ConfigError, match=rf"{key!r} expects"):
        create_experiment_config(get_config("debug"), **{key: value})


@pytest.mark.parametrize(
    "key, value",
    [
        ("topk_ratio", 0.0),
        ("topk_ratio", 1.5),
        ("batch_size", 0),
        ("dropout", 1.0),
        ("learning_rate", float("nan")),
        ("weight_decay", -1.0),
        ("amp", "maybe"),
        ("resize_short_side", 32),
        ("warmup_epochs", 99),
        ("val_fraction", 0.0),
        ("val_fraction", 1.0),
        ("snippet_sampling", "random"),
        ("streaming_loss_weight", -1.0),
        ("flow_short_side", -1),
        ("flow_short_side", 112),  # the debug preset's input is RGB
        ("flow_camera_motion", "median"),  # ... so it has no flow to take a camera's motion out of
        ("flow_camera_motion", "affine"),
        ("interpolation", "nearest"),
    ],
)
def test_out_of_range_values_are_refused(key, value):
    with pytest.raises(ConfigError, match=key):
        create_experiment_config(get_config("debug"), **{key: value})


def test_flow_short_side_below_the_model_size_is_refused():
    with pytest.raises(ConfigError, match="flow_short_side"):
        create_experiment_config(get_config("surveillance"), flow_short_side=64)  # resize_short_side 72
    cfg = create_experiment_config(get_config("surveillance"), flow_short_side=112)
    assert to_preprocess_config(cfg).working_short_side == 112


def test_the_camera_motion_setting_reaches_the_preprocessing_contract():
    assert to_preprocess_config(get_config("surveillance")).flow_camera_motion == "align"
    for mode in ("keep", "median"):
        other = create_experiment_config(get_config("surveillance"), flow_camera_motion=mode)
        assert to_preprocess_config(other).flow_camera_motion == mode
    assert to_preprocess_config(get_config("debug")).to_dict()["contract"] == "i3dmtn.preprocess/1"


@pytest.mark.parametrize(
    "overrides, key, expected",
    [
        ({"motion_forest_trees": -1}, "motion_forest_trees", "an integer >= 0"),
        ({"motion_forest_trees": 5}, "motion_forest_trees", "input_modality 'rgb'"),
        (
            {"input_modality": "flow", "motion_forest_trees": 5, "motion_weight": 1.5},
            "motion_weight",
            "in [0, 1]",
        ),
        ({"motion_weight": 0.3}, "motion_weight", "with motion_forest_trees 0"),
        ({"input_modality": "flow", "motion_forest_trees": 5, "motion_crops": 2}, "motion_crops", "1 or 3"),
        ({"motion_crops": 3}, "motion_crops", "with motion_forest_trees 0"),
        (
            {"input_modality": "flow", "motion_forest_trees": 5, "motion_forest_leaf": 0},
            "motion_forest_leaf",
            ">= 1",
        ),
        ({"motion_forest_leaf": 10}, "motion_forest_leaf", "with motion_forest_trees 0"),
    ],
)
def test_motion_forest_keys_are_checked_in_one_line(overrides, key, expected):
    with pytest.raises(ConfigError, match=key) as exc:
        create_experiment_config(get_config("debug"), **overrides)
    assert expected in str(exc.value) and "\n" not in str(exc.value)


_POSE = {"input_modality": "flow", "motion_forest_trees": 5, "pose_forest_trees": 5}


@pytest.mark.parametrize(
    "overrides, key, expected",
    [
        ({**_POSE, "pose_forest_trees": -1}, "pose_forest_trees", "an integer >= 0"),
        ({**_POSE, "motion_forest_trees": 0}, "pose_forest_trees", "beside the motion forest"),
        ({**_POSE, "pose_forest_leaf": 0}, "pose_forest_leaf", ">= 1"),
        ({**_POSE, "pose_weight": -0.1}, "pose_weight", "in [0, 1]"),
        ({**_POSE, "clip_length": 8, "pose_every": 9}, "pose_every", "clip_length = 8"),
        ({**_POSE, "frame_stride": 2}, "frame_stride", "1 with a pose forest"),
        ({**_POSE, "pose_height": 300}, "pose_height", "a multiple of 32"),
        ({"pose_weight": 0.2}, "pose_weight", "with pose_forest_trees 0"),
        ({"pose_every": 2}, "pose_every", "with pose_forest_trees 0"),
        ({"pose_height": 256}, "pose_height", "with pose_forest_trees 0"),
        ({"pose_model": "m.xml"}, "pose_model", "with pose_forest_trees 0"),
        ({"pose_forest_leaf": 4}, "pose_forest_leaf", "with pose_forest_trees 0"),
    ],
)
def test_pose_forest_keys_are_checked_in_one_line(overrides, key, expected):
    with pytest.raises(ConfigError, match=key) as exc:
        create_experiment_config(get_config("debug"), **overrides)
    assert expected in str(exc.value) and "\n" not in str(exc.value)


def test_a_pose_forest_beside_the_motion_forest_is_accepted():
    config = create_experiment_config(get_config("surveillance"), pose_forest_trees=50, pose_every=2)
    assert config["pose_forest_trees"] == 50 and config["pose_every"] == 2 and config["pose_weight"] == 0.4


def test_surveillance_fuses_a_motion_forest_and_the_others_have_none():
    assert get_config("surveillance")["motion_forest_trees"] == 500
    assert 0 <= get_config("surveillance")["motion_weight"] <= 1
    assert get_config("surveillance")["motion_crops"] == 3  # the forest also scores the frame's edges
    assert all(get_config(n)["motion_crops"] == 1 for n in CONFIG_NAMES if n != "surveillance")
    assert all(get_config(n)["motion_forest_trees"] == 0 for n in CONFIG_NAMES if n != "surveillance")


def test_validate_refuses_missing_and_extra_keys():
    cfg = get_config("debug")
    del cfg["seed"]
    with pytest.raises(ConfigError, match="missing key"):
        validate_config(cfg)
    with pytest.raises(ConfigError, match="'sede'"):
        validate_config({**get_config("debug"), "sede": 1})


def test_json_round_trip():
    cfg = create_experiment_config(get_config("violence"), epochs=3, name="exp1")
    assert config_from_json(config_to_json(cfg)) == cfg
    assert json.loads(config_to_json(cfg))["name"] == "exp1"


def test_json_missing_keys_are_filled_from_the_named_preset():
    data = get_config("debug")
    del data["frame_size"]
    assert config_from_json(json.dumps(data))["frame_size"] == get_config("debug")["frame_size"]


def test_a_saved_config_without_a_newer_key_behaves_as_before_the_key():
    # a kinetics checkpoint written before standardize_features and interpolation existed: its head has no
    # statistics and its frames were area-shrunk, whatever the preset says now
    data = create_experiment_config(get_config("kinetics"), standardize_features=True, interpolation="linear")
    for key in ADDED_KEYS:
        del data[key]
    saved = config_from_json(json.dumps(data), saved=True)
    assert {k: saved[k] for k in ADDED_KEYS} == ADDED_KEYS
    assert to_preprocess_config(saved).interpolation == "area"
    # a config written by hand names a preset and takes the rest from it
    by_hand = config_from_json(json.dumps(data))
    assert by_hand["standardize_features"] == get_config("kinetics")["standardize_features"]
    assert (
        config_from_json(json.dumps({**data, "interpolation": "linear"}), saved=True)["interpolation"]
        == "linear"
    )


def test_the_interpolation_reaches_the_preprocessing_contract():
    assert to_preprocess_config(get_config("default")).interpolation == "area"
    linear = create_experiment_config(get_config("default"), interpolation="linear")
    assert to_preprocess_config(linear).interpolation == "linear"
    assert to_preprocess_config(get_config("kinetics")).interpolation == "linear"


def test_bad_json_names_the_source():
    with pytest.raises(ConfigError, match="run.json: not valid JSON"):
        config_from_json("{", source="run.json")
    with pytest.raises(ConfigError, match="JSON object"):
        config_from_json("[1]")


def test_save_and_load_file(tmp_path):
    cfg = get_config("fight")
    path = save_config(cfg, tmp_path / "sub" / "config.json")
    assert load_config(path) == cfg
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path / "missing.json")


@pytest.mark.parametrize(
    "k, ratio, expected", [(32, 0.1, 3), (8, 0.1, 1), (5, 0.1, 1), (10, 0.25, 3), (4, 1.0, 4)]
)
def test_topk_count(k, ratio, expected):
    assert topk_count(k, ratio) == expected


def test_preprocess_config_matches_frame_size():
    pp = to_preprocess_config(get_config("debug"))
    assert pp.crop_size == (64, 64) and pp.resize_short_side == 64


def test_module_does_not_import_torch():
    import subprocess

    code = "import sys, training.configs; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
