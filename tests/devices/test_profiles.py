"""Device profiles: every shipped profile loads; bad files give one-line errors naming the file and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from devices.profiles import ProfileError, list_profiles, load_profile

SHIPPED = ("jetson-orin-nano", "jetson-agx-orin", "intel-nuc", "intel-nuc-gpu", "generic-cpu")

MINIMAL = """
[device]
name = "test box"

[model]
backend = "openvino"
"""


def _write(tmp_path: Path, text: str, name: str = "box.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _error(path: Path) -> str:
    with pytest.raises(ProfileError) as info:
        load_profile(path)
    message = str(info.value)
    assert "\n" not in message
    assert path.name in message
    return message


def test_list_profiles_names_every_shipped_profile():
    assert set(SHIPPED) <= set(list_profiles())


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_profile_loads_with_a_backend_that_fits_its_target(name):
    profile = load_profile(name)
    assert profile.name == name
    assert profile.describe().startswith(f"{profile.device.name} - ") and profile.device.name
    pairs = {("tensorrt", "jetson"), ("openvino", "openvino"), ("onnxruntime", "onnx")}
    assert (profile.model.backend, profile.model.target) in pairs


def test_jetson_profile_fills_the_csi_camera_template():
    profile = load_profile("jetson-orin-nano")
    pipeline = profile.camera_pipeline(sensor_id=1)
    assert pipeline.startswith("nvarguscamerasrc sensor-id=1 ")
    assert f"width={profile.camera.width},height={profile.camera.height}" in pipeline
    assert f"framerate={profile.camera.fps}/1" in pipeline
    assert "{" not in pipeline


def test_usb_camera_profile_has_no_pipeline():
    assert load_profile("intel-nuc").camera_pipeline() is None


def test_profile_loads_from_a_path_with_defaults(tmp_path):
    profile = load_profile(_write(tmp_path, MINIMAL))
    assert profile.name == "box"
    assert (profile.model.target, profile.model.precision, profile.model.device) == (
        "openvino",
        "int8",
        "CPU",
    )
    assert profile.engine.performance_hint == "LATENCY"
    assert profile.engine.workspace_mb is None


def test_event_keys_left_out_stay_unset_so_the_bundle_decides(tmp_path):
    # how the runtime combines them with the bundle's event policy: tests/edge_runtime/test_event_policy_choice.py
    events = load_profile(_write(tmp_path, MINIMAL + "[events]\noff_ratio = 0.5\n")).events
    assert events.off_ratio == 0.5
    assert events.on_threshold is None and events.min_duration_s is None
    assert events.cooldown_s == 5.0 and events.update_interval_s == 2.0


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_profiles_leave_the_event_policy_to_the_bundle(name):
    events = load_profile(name).events
    assert (events.on_threshold, events.off_ratio, events.min_duration_s) == (None, None, None)


def test_unknown_bare_name_lists_the_shipped_profiles():
    with pytest.raises(ProfileError, match="unknown device profile 'no-such-box'.*generic-cpu"):
        load_profile("no-such-box")


def test_unknown_key_names_file_section_and_key(tmp_path):
    message = _error(_write(tmp_path, MINIMAL + 'precison = "int8"\n'))
    assert "[model] unknown key 'precison'" in message


def test_unknown_section_is_refused(tmp_path):
    message = _error(_write(tmp_path, MINIMAL + "[camras]\nwidth = 3\n"))
    assert "unknown section [camras]" in message


def test_bad_value_names_the_key_and_the_choices(tmp_path):
    path = _write(tmp_path, MINIMAL + 'precision = "int4"\n', "intel-nuc.toml")
    assert _error(path) == f"{path}: [model] precision must be one of int8, fp16, fp32, got 'int4'"


def test_stream_decoder_defaults_to_software_and_a_bad_one_names_the_choices(tmp_path):
    assert load_profile(_write(tmp_path, MINIMAL)).streams.decoder == "software"
    h265 = load_profile(_write(tmp_path, MINIMAL + '[streams]\ndecoder = "vaapi"\ncodec = "h265"\n'))
    assert (h265.streams.decoder, h265.streams.codec) == ("vaapi", "h265")
    message = _error(_write(tmp_path, MINIMAL + '[streams]\ndecoder = "nvdec"\n'))
    assert message.endswith("[streams] decoder must be one of software, nvv4l2decoder, vaapi, got 'nvdec'")


def test_bad_type_names_the_key_and_the_type(tmp_path):
    message = _error(_write(tmp_path, MINIMAL + 'input_size = "224"\n'))
    assert "[model] input_size must be an integer, got string '224'" in message


def test_boolean_is_not_an_integer(tmp_path):
    message = _error(_write(tmp_path, MINIMAL + "[camera]\nfps = true\n"))
    assert "[camera] fps must be an integer, got boolean true" in message


def test_out_of_range_number_is_refused(tmp_path):
    message = _error(_write(tmp_path, MINIMAL + "[events]\noff_ratio = 1.5\n"))
    assert "[events] off_ratio must be a number in (0, 1]" in message


def test_engine_option_of_another_backend_is_refused(tmp_path):
    message = _error(_write(tmp_path, MINIMAL + "[engine]\nworkspace_mb = 512\n"))
    assert "[engine] workspace_mb applies to backend tensorrt, not openvino" in message


def test_openvino_max_batch_is_read_and_a_key_of_two_backends_names_both(tmp_path):
    assert load_profile(_write(tmp_path, MINIMAL + "[engine]\nmax_batch = 3\n")).engine.max_batch == 3
    assert load_profile(_write(tmp_path, MINIMAL)).engine.max_batch is None  # the backend's default
    assert "[engine] max_batch must be an integer in [1, 64], got 0" in _error(
        _write(tmp_path, MINIMAL + "[engine]\nmax_batch = 0\n")
    )
    onnx = MINIMAL.replace('"openvino"', '"onnxruntime"') + "[engine]\nmax_batch = 2\n"
    assert "[engine] max_batch applies to backend tensorrt or openvino, not onnxruntime" in _error(
        _write(tmp_path, onnx)
    )


def test_fp16_outside_tensorrt_is_refused(tmp_path):
    message = _error(_write(tmp_path, MINIMAL + 'precision = "fp16"\n'))
    assert "[model] precision 'fp16' is only for backend tensorrt" in message


def test_device_string_is_checked_against_the_backend(tmp_path):
    message = _error(_write(tmp_path, MINIMAL + 'device = "cuda:0"\n'))
    assert "[model] device must be CPU, GPU" in message


def test_unknown_pipeline_placeholder_is_refused(tmp_path):
    message = _error(_write(tmp_path, MINIMAL + '[camera]\npipeline = "v4l2src device={dev} ! appsink"\n'))
    assert "[camera] pipeline has unknown placeholder(s) ['dev']" in message


def test_missing_model_section_is_refused(tmp_path):
    message = _error(_write(tmp_path, '[device]\nname = "x"\n'))
    assert "section [model] is missing" in message


def test_toml_syntax_error_names_file_and_line(tmp_path):
    text = MINIMAL + "input_size = = 3\n"
    message = _error(_write(tmp_path, text))
    assert "invalid TOML" in message
    assert f"line {len(text.splitlines())}," in message


@pytest.mark.parametrize(
    ("backend", "section", "line", "says"),
    [
        ("openvino", "events", "cooldown_s = 1e12", "[events] cooldown_s must be a number in [0, 86400]"),
        ("openvino", "events", "min_duration_s = 1e9", "[events] min_duration_s must be a number in [0, 3600]"),
        ("openvino", "events", "update_interval_s = 1e9", "[events] update_interval_s must be a number in (0, 3600]"),
        ("tensorrt", "engine", "workspace_mb = 1000000000", "[engine] workspace_mb must be an integer in [16, 65536]"),
        ("onnxruntime", "engine", "intra_op_threads = 100000", "[engine] intra_op_threads must be an integer in [0, 256]"),
        ("openvino", "engine", "num_streams = 100000", "[engine] num_streams must be a positive integer <= 64"),
    ],
)  # fmt: skip
def test_numbers_beyond_what_a_device_runs_are_refused_by_key(tmp_path, backend, section, line, says):
    text = MINIMAL.replace('"openvino"', f'"{backend}"') + f"[{section}]\n{line}\n"
    assert says in _error(_write(tmp_path, text))


TENSORRT = '[device]\nname = "jet"\n[model]\nbackend = "tensorrt"\n[engine]\n'


def test_tensorrt_engine_keys_batch_sizes_and_a_timing_cache_path(tmp_path):
    engine = load_profile(
        _write(tmp_path, TENSORRT + 'max_batch = 8\nopt_batch = 2\ntiming_cache = "/var/cache/t"\n')
    ).engine
    assert (engine.max_batch, engine.opt_batch, engine.timing_cache) == (8, 2, "/var/cache/t")
    assert load_profile(_write(tmp_path, TENSORRT)).engine.max_batch == 4


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ('timing_cache = "cache/t"', "timing_cache must be true, false or an absolute path, got 'cache/t'"),
        ("max_batch = 2\nopt_batch = 3", "[engine] opt_batch must be an integer in [1, 2], got 3"),
        ("max_batch = 0", "[engine] max_batch must be an integer in [1, 64], got 0"),
    ],
)
def test_bad_tensorrt_batch_or_timing_cache_is_refused_by_name(tmp_path, line, says):
    assert says in _error(_write(tmp_path, TENSORRT + line + "\n"))


def test_ip_cameras_name_their_detect_and_record_streams(tmp_path):
    text = MINIMAL + '[cameras.door]\ndetect = "rtsp://10.0.0.5/sub"\nrecord = "rtsp://10.0.0.5/main"\n'
    text += '[cameras.yard]\ndetect = "rtsp://10.0.0.6/sub"\n'
    cameras = load_profile(_write(tmp_path, text)).cameras
    assert cameras["door"].detect.endswith("/sub") and cameras["door"].record.endswith("/main")
    assert cameras["yard"].record is None


@pytest.mark.parametrize(
    "table,says",
    [
        ('[cameras.door]\nrecord = "rtsp://h/main"\n', "[cameras.door] detect is missing"),
        ('[cameras.door]\ndetect = "rtsp://h/sub"\nrole = "x"\n', "[cameras.door] unknown key 'role'"),
        ("[cameras]\ndoor = 3\n", "[cameras.door] must be a table"),
        ('[cameras."a b"]\ndetect = "rtsp://h/sub"\n', "[cameras.a b]: a camera name is"),
    ],
)
def test_a_bad_camera_table_names_the_camera_and_the_key(tmp_path, table, says):
    assert says in _error(_write(tmp_path, MINIMAL + table))
