"""Strict configuration: unknown keys name the closest valid key, values name their range; overrides
index lists and errors say whether the file or the command line holds the bad key."""
from dataclasses import dataclass

import pytest

from lumde_depth.config import ConfigError, apply_overrides, example_override, field, from_dict, load, parse_override


@dataclass
class Optim:
    lr: float = field(1e-3, low=0.0, high=1.0)
    kind: str = field("adam", choices=("adam", "sgd"))


@dataclass
class Stage:
    name: str = "all"
    lr: float = field(1e-3, low=0.0, high=1.0)


@dataclass
class Train:
    steps: int = field(100, low=1)
    optim: Optim = field(default_factory=Optim)
    layers: list[str] = field(default_factory=lambda: ["E1", "E2"])
    note: str | None = None
    stages: list[Stage] = field(default_factory=lambda: [Stage()])
    extra: dict = field(default_factory=dict)


def test_defaults_and_nested_values():
    cfg = from_dict(Train, {"steps": 5, "optim": {"lr": 0.5}})
    assert cfg.steps == 5 and cfg.optim.lr == 0.5 and cfg.optim.kind == "adam"
    assert cfg.layers == ["E1", "E2"] and cfg.note is None


def test_misspelled_key_names_closest():
    with pytest.raises(ConfigError, match=r"unknown key 'optim.lrr'.*did you mean 'optim.lr'"):
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
    with pytest.raises(ConfigError, match="command line 'optim.betas=1'"):
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


def test_overrides_index_lists_both_ways(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("stages:\n  - {name: a}\n  - {name: b, lr: 0.1}\n")
    cfg = load(Train, path, ["stages.1.lr=3e-4", "stages[0].name=first", "layers.1=D3"])
    assert [(s.name, s.lr) for s in cfg.stages] == [("first", 1e-3), ("b", 3e-4)] and cfg.layers == ["E1", "D3"]
    # a list the file does not give starts from its default
    assert load(Train, None, ["stages[0].lr=0.5"]).stages[0].lr == 0.5
    # free-form mappings take any key, and index the lists inside them
    cfg = load(Train, None, ["extra={terms: [{kind: a}, {kind: b}]}", "extra.terms[1].weight=2"])
    assert cfg.extra == {"terms": [{"kind": "a"}, {"kind": "b", "weight": 2}]}
    assert parse_override("a.b[2][0].c=1") == (["a", "b", 2, 0, "c"], 1)
    with pytest.raises(ConfigError, match=r"'stages' has 2 item\(s\) \(indices 0 to 1\); .*stages=\[...\]"):
        load(Train, path, ["stages.2.lr=1e-4"])
    with pytest.raises(ConfigError, match=r"'stages' is a list: index it with a number \(stages.0 or stages\[0\]\)"):
        load(Train, path, ["stages.first.lr=1e-4"])
    with pytest.raises(ConfigError, match=r"'optim' is a section, not a list"):
        load(Train, path, ["optim[0].lr=1e-4"])
    with pytest.raises(ConfigError, match=r"'steps' is a value \(100\), not a section"):
        load(Train, path, ["steps.x=1"])


def test_errors_say_whether_the_file_or_the_command_line_is_wrong(tmp_path):
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text("steps: 7\n")
    bad.write_text("steps: 7\noptim: {lrr: 0.1}\n")
    # a typo on the command line is not blamed on a valid file
    with pytest.raises(ConfigError) as info:
        load(Train, good, ["optim.weight=1"])
    assert str(info.value).startswith("command line 'optim.weight=1': unknown key 'optim.weight'")
    assert str(good) not in str(info.value)
    with pytest.raises(ConfigError, match=r"^command line \(stages.0.lr=2\): 'stages\[0\].lr' = 2.0 is out of range"):
        load(Train, good, ["stages.0.lr=2"])
    # a typo in the file is the file's, overrides or not
    for overrides in ([], ["steps=3"]):
        with pytest.raises(ConfigError, match=rf"^{bad}: unknown key 'optim.lrr'; did you mean 'optim.lr'"):
            load(Train, bad, overrides)
    # an override may repair the file
    assert load(Train, bad, ["optim={lr: 0.1}"]).optim.lr == 0.1


def test_suggestions_are_keys_that_exist():
    # nothing close in 'optim': the same name elsewhere is suggested, with its full key
    with pytest.raises(ConfigError, match=r"unknown key 'optim.name'; did you mean 'stages.0.name'"):
        apply_overrides({}, ["optim.name=x"], Train)
    # the example of a well-formed override is itself valid
    with pytest.raises(ConfigError, match="key=value") as info:
        apply_overrides({}, ["nonsense"], Train)
    example = example_override(Train)
    assert f"(e.g. {example})" in str(info.value)
    assert load(Train, None, [example]) == from_dict(Train, {})
