"""Strict configuration: unknown keys name the closest valid key, values name their range."""
from dataclasses import dataclass

import pytest

from lumde_depth.config import ConfigError, apply_overrides, field, from_dict, load


@dataclass
class Optim:
    lr: float = field(1e-3, low=0.0, high=1.0)
    kind: str = field("adam", choices=("adam", "sgd"))


@dataclass
class Train:
    steps: int = field(100, low=1)
    optim: Optim = field(default_factory=Optim)
    layers: list[str] = field(default_factory=lambda: ["E1", "E2"])
    note: str | None = None


def test_defaults_and_nested_values():
    cfg = from_dict(Train, {"steps": 5, "optim": {"lr": 0.5}})
    assert cfg.steps == 5 and cfg.optim.lr == 0.5 and cfg.optim.kind == "adam"
    assert cfg.layers == ["E1", "E2"] and cfg.note is None


def test_misspelled_key_names_closest():
    with pytest.raises(ConfigError, match=r"unknown key 'optim.lrr'.*did you mean 'lr'"):
        from_dict(Train, {"optim": {"lrr": 0.1}})
    with pytest.raises(ConfigError, match=r"'stesp'.*'steps'"):
        from_dict(Train, {"stesp": 3})


def test_out_of_range_and_wrong_type_and_choices():
    with pytest.raises(ConfigError, match=r"'optim.lr' = 2.0 is out of range \[0.0, 1.0\]"):
        from_dict(Train, {"optim": {"lr": 2.0}})
    with pytest.raises(ConfigError, match=r"'steps' must be an integer"):
        from_dict(Train, {"steps": "many"})
    with pytest.raises(ConfigError, match=r"'optim.kind' = 'rmsprop' is not one of"):
        from_dict(Train, {"optim": {"kind": "rmsprop"}})


def test_yaml_file_and_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("steps: 7\noptim:\n  kind: sgd\n")
    cfg = load(Train, path, ["optim.lr=1e-4", "layers=[D1]"])
    assert (cfg.steps, cfg.optim.kind, cfg.optim.lr, cfg.layers) == (7, "sgd", 1e-4, ["D1"])
    with pytest.raises(ConfigError, match=str(path)):
        load(Train, path, ["optim.betas=1"])
    with pytest.raises(ConfigError, match="key=value"):
        apply_overrides({}, ["nonsense"])


def test_missing_file_and_non_mapping(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load(Train, tmp_path / "absent.yaml")
    bad = tmp_path / "list.yaml"
    bad.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="must be a mapping"):
        load(Train, bad)
