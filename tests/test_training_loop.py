"""The pieces of the accelerate loop shared by train-classifier and train-reference
(avsync_bench/training_loop.py): config loading errors and checkpoint bookkeeping."""

from __future__ import annotations

import pytest

from avsync_bench.classifier.train import CONFIG_DIR as CLASSIFIER_CONFIGS
from avsync_bench.classifier.train import load_config as load_classifier_config
from avsync_bench.errors import AVSyncBenchError, OptionError
from avsync_bench.training_loop import latest_checkpoint, prune_checkpoints
from reference_model.training import load_config as load_reference_config


@pytest.mark.parametrize("loader", [load_classifier_config, load_reference_config])
def test_config_errors_name_the_file_and_the_key(loader, tmp_path):
    with pytest.raises(OptionError, match=r"not found \(bundled configs: .*tiny-cpu"):
        loader("no-such-config")
    bad_key = tmp_path / "bad_key.yaml"
    bad_key.write_text("optim:\n  learning_rate: 1.0e-3\n  lerning_rate: 2.0\n")
    with pytest.raises(OptionError, match=r"bad_key.yaml: unknown key optim.lerning_rate"):
        loader(bad_key)
    bad_section = tmp_path / "bad_section.yaml"
    bad_section.write_text("optimiser:\n  learning_rate: 1.0e-3\n")
    with pytest.raises(OptionError, match=r"bad_section.yaml: unknown section 'optimiser'"):
        loader(bad_section)
    with pytest.raises(OptionError, match=r"unknown config overrides \['lerning_rate'\]"):
        loader("tiny-cpu", lerning_rate=1.0)
    assert issubclass(OptionError, AVSyncBenchError)  # the CLI prints it without a traceback


def test_bundled_names_and_none_overrides():
    cfg = load_classifier_config("tiny-cpu", learning_rate=None, batch_size=3)
    assert cfg.batch_size == 3 and cfg.learning_rate == 4.0e-3  # None keeps the file's value
    assert load_classifier_config(CLASSIFIER_CONFIGS / "vggss.yaml").max_train_steps == 40000


def test_latest_checkpoint_needs_a_finished_save_and_pruning_keeps_the_newest(tmp_path):
    for step in (5, 10, 20):
        (tmp_path / f"checkpoint-{step}").mkdir()
        (tmp_path / f"checkpoint-{step}" / "train_state.json").write_text("{}")
    (tmp_path / "checkpoint-30").mkdir()  # interrupted while saving: no train_state.json
    (tmp_path / "checkpoint-x").mkdir()
    assert latest_checkpoint(tmp_path).name == "checkpoint-20"
    prune_checkpoints(tmp_path, 2)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "checkpoint-20",
        "checkpoint-30",
        "checkpoint-x",
    ]
    prune_checkpoints(tmp_path, None)  # no limit: nothing removed
    assert len(list(tmp_path.iterdir())) == 3
