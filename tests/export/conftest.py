"""Session fixtures: tiny data sets, checkpoints and one export per target, shared by the export tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.export import helpers


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory) -> Path:
    return helpers.make_synth(tmp_path_factory.mktemp("export_synth"))


@pytest.fixture(scope="session")
def untrained_ckpt(tmp_path_factory) -> Path:
    config = helpers.tiny_config()
    return helpers.save_ckpt(
        tmp_path_factory.mktemp("ckpt") / "untrained.pt", helpers.untrained_model(config), config
    )


@pytest.fixture(scope="session")
def exports(tmp_path_factory, synth_root, untrained_ckpt) -> dict:
    """``target -> ExportResult`` of the untrained tiny model on the synth data, made on first use."""

    class Lazy(dict):
        def __missing__(self, target: str):
            out = tmp_path_factory.mktemp(f"bundle_{target}") / "bundle"
            self[target] = helpers.export(untrained_ckpt, synth_root, out, target=target)
            return self[target]

    return Lazy()


@pytest.fixture(scope="session")
def contrast_root(tmp_path_factory) -> Path:
    return helpers.make_contrast(tmp_path_factory.mktemp("contrast"))


@pytest.fixture(scope="session")
def trained_ckpt(tmp_path_factory, contrast_root) -> Path:
    config = helpers.tiny_config()
    model = helpers.trained_on(contrast_root, config)
    return helpers.save_ckpt(tmp_path_factory.mktemp("ckpt_trained") / "trained.pt", model, config)


@pytest.fixture(scope="session")
def constant_root(tmp_path_factory) -> Path:
    return helpers.make_constant_calibration(tmp_path_factory.mktemp("constant"))


@pytest.fixture(scope="session")
def forest_run(tmp_path_factory, contrast_root) -> Path:
    """A run of the tiny flow model trained 1 epoch by ``i3dmtn train`` with a 5-tree motion forest; what the
    command printed is in ``stdout.txt`` beside it."""
    import contextlib
    import io

    from training.cli import main

    out = tmp_path_factory.mktemp("forest_run")
    sets = [a for kv in helpers.forest_settings() for a in ("--set", kv)]
    argv = ["train", "--config", "debug", "--data_path", str(contrast_root), "--output", str(out / "run")]
    argv += ["--frame-cache", str(out / "frames"), "--no-progress", *sets]
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(argv) == 0
    (out / "stdout.txt").write_text(printed.getvalue())
    return out / "run"
