"""Training configuration: presets, `--set` overrides, errors, TOML round trip."""

from __future__ import annotations

import dataclasses
import tomllib

import pytest
from hypothesis import given, settings, strategies as st

from selfplay import config as cfg


@pytest.mark.parametrize("game", ["tictactoe", "connect4"])
def test_preset_applies_the_game_file_over_the_defaults(game):
    data = tomllib.loads((cfg.PRESETS / f"{game}.toml").read_text())
    config = cfg.preset(game)
    defaults = cfg.TrainConfig()
    assert config.game == game
    assert data, "the preset file is empty"
    for section, cls in cfg.SECTIONS.items():
        values = data.get(section, {})
        for f in dataclasses.fields(cls):
            got = getattr(getattr(config, section), f.name)
            want = values.get(f.name, getattr(getattr(defaults, section), f.name))
            assert got == want and type(got) is type(getattr(getattr(defaults, section), f.name)), \
                f"{section}.{f.name}"


def test_game_without_preset_gets_the_defaults():
    config = cfg.preset("no_such_preset")
    assert config == dataclasses.replace(cfg.TrainConfig(), game="no_such_preset")


def test_parse_overrides_nests_sections_and_keeps_strings():
    data = cfg.parse_overrides(["search.num_simulations=32", " learner.learning_rate = 0.01 ",
                                "search.root_mode=puct", "game=connect4", "run.seed=7"])
    assert data == {"search": {"num_simulations": "32", "root_mode": "puct"},
                    "learner": {"learning_rate": "0.01"}, "run": {"seed": "7"},
                    "game": "connect4"}


@pytest.mark.parametrize("item", ["search.num_simulations", "=3", "a.b.c=1", "search=3",
                                  "  =x"])
def test_parse_overrides_refuses_malformed_items(item):
    with pytest.raises(cfg.ConfigError, match="must look like section.key=value"):
        cfg.parse_overrides([item])


def test_merge_coerces_strings_to_the_field_types():
    base = cfg.preset("tictactoe")
    merged = cfg.merge(base, cfg.parse_overrides([
        "search.num_simulations=7", "learner.learning_rate=1e-3", "learner.replay_ratio=2",
        "learner.augment=false", "selfplay.inference_backend=torch", "run.max_minutes=1",
        "network.value_head=wdl", "game=connect4"]))
    assert merged.search.num_simulations == 7 and type(merged.search.num_simulations) is int
    assert merged.learner.learning_rate == 1e-3
    assert merged.learner.replay_ratio == 2.0 and type(merged.learner.replay_ratio) is float
    assert merged.learner.augment is False
    assert merged.run.max_minutes == 1.0 and type(merged.run.max_minutes) is float
    assert merged.selfplay.inference_backend == "torch"
    assert merged.network.value_head == "wdl"
    assert merged.game == "connect4"
    # Everything not named keeps its value, and the input is not modified.
    assert merged.search.root_mode == base.search.root_mode
    assert merged.network.blocks == base.network.blocks
    assert base == cfg.preset("tictactoe")


@pytest.mark.parametrize("text, value", [("true", True), ("False", False), ("1", True),
                                         ("0", False)])
def test_bool_spellings(text, value):
    merged = cfg.merge(cfg.TrainConfig(), {"learner": {"augment": text}})
    assert merged.learner.augment is value


def test_toml_values_are_typed_too():
    merged = cfg.merge(cfg.TrainConfig(), {"learner": {"learning_rate": 1, "augment": False},
                                           "search": {"num_simulations": 9}})
    assert merged.learner.learning_rate == 1.0 and type(merged.learner.learning_rate) is float
    assert merged.learner.augment is False and merged.search.num_simulations == 9


@pytest.mark.parametrize("data, message", [
    ({"serch": {"num_simulations": "3"}}, "unknown config section 'serch' (did you mean search?)"),
    ({"nonsense": {}}, "unknown config section 'nonsense'"),
    ({"search": {"num_simulation": "3"}},
     "unknown config key search.num_simulation (did you mean search.num_simulations?)"),
    ({"learner": {"lr": "3"}}, "unknown config key learner.lr"),
    ({"search": {"num_simulations": "many"}}, "search.num_simulations must be int, got 'many'"),
    ({"search": {"num_simulations": "1.5"}}, "search.num_simulations must be int"),
    ({"search": {"num_simulations": 1.5}}, "search.num_simulations must be int"),
    ({"search": {"num_simulations": True}}, "search.num_simulations must be int"),
    ({"learner": {"learning_rate": "fast"}}, "learner.learning_rate must be float"),
    ({"learner": {"learning_rate": True}}, "learner.learning_rate must be float"),
    ({"learner": {"augment": "yes"}}, "learner.augment must be bool"),
    ({"learner": {"augment": 1}}, "learner.augment must be bool"),
    ({"search": {"root_mode": 3}}, "search.root_mode must be str"),
    ({"run": {"actors": "many"}}, "actors must be auto or a number of processes"),
    ({"run": {"backend": "slurm"}}, "backend must be local or ray"),
    ({"search": "fast"}, "[search] must be a table"),
    ({"game": 3}, "game must be a string"),
    ({"search": {"root_mode": "best"}}, "invalid [search] settings: root_mode"),
    ({"search": {"num_simulations": "0"}}, "invalid [search] settings"),
    ({"network": {"blocks": "0"}}, "invalid [network] settings"),
    # Values that used to pass here and fail later, after config.toml was written.
    ({"run": {"checkpoint_every": "0"}}, "invalid [run] settings: checkpoint_every"),
    ({"run": {"device": "gpu"}}, "invalid [run] settings: device"),
    ({"run": {"max_minutes": "-1"}}, "invalid [run] settings: max_minutes"),
    ({"replay": {"window_positions": "0"}}, "invalid [replay] settings: window_positions"),
    ({"replay": {"min_positions": "-1"}}, "invalid [replay] settings: min_positions"),
    ({"selfplay": {"parallel_games": "0"}}, "invalid [selfplay] settings: parallel_games"),
    ({"selfplay": {"moves_per_iteration": "0"}}, "invalid [selfplay] settings"),
    ({"selfplay": {"inference_backend": "tpu"}},
     "invalid [selfplay] settings: inference_backend must be one of auto, onnx"),
    ({"learner": {"batch_size": "0"}}, "invalid [learner] settings: batch_size"),
    ({"learner": {"learning_rate": "nan"}}, "invalid [learner] settings: learning_rate"),
])
def test_bad_settings_are_config_errors_with_clear_messages(data, message):
    with pytest.raises(cfg.ConfigError) as info:
        cfg.merge(cfg.preset("tictactoe"), data)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_load_toml_errors(tmp_path):
    with pytest.raises(cfg.ConfigError, match="does not exist"):
        cfg.load_toml(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[search\nnum_simulations = 3\n")
    with pytest.raises(cfg.ConfigError, match="not valid TOML"):
        cfg.load_toml(bad)
    with pytest.raises(cfg.ConfigError, match="no game name"):
        cfg.from_dict({"search": {}})


@pytest.mark.parametrize("game", ["tictactoe", "connect4"])
def test_to_toml_round_trips_the_presets(game):
    config = cfg.preset(game)
    assert cfg.from_dict(tomllib.loads(cfg.to_toml(config))) == config


# Values a field may hold (the dataclasses validate ranges and names).
_CHOICES = {"root_mode": ["puct", "gumbel"], "value_head": ["scalar", "wdl"],
            "inference_backend": ["auto", "onnx", "torch", "torch_cl", "torch_bf16", "compile"],
            "device": ["cpu", "cuda", "cuda:1"], "gating": ["off", "winrate", "sprt"],
            "gate_score": [0.5, 0.55, 1.0], "sprt_elo0": [0.0, -5.0], "sprt_elo1": [10.0, 30.0],
            "downsample": ["auto", "none", "always"], "reanalyze_fraction": [0.0, 0.25, 0.9],
            "backend": ["local", "ray"], "actors": ["auto", "0", "3"],
            "address": ["", "auto", "10.0.0.5:6379"], "lr_schedule": ["constant", "cosine"],
            "value_target_q": [0.0, 0.5, 1.0], "full_search_fraction": [0.25, 1.0],
            "random_move_fraction": [0.0, 0.05], "ema_decay": [0.0, 0.99]}


def _field_values(f, default, limit=cfg.MAX_SETTING):
    if f.name in _CHOICES:
        return st.sampled_from(_CHOICES[f.name])
    if isinstance(default, bool):
        return st.booleans()
    if isinstance(default, int):
        return st.integers(1, limit)
    return st.floats(0, 1e9, allow_nan=False) | st.sampled_from([1e-12, 0.1, 2e-3, 1e300])


@st.composite
def configs(draw):
    data = {"game": draw(st.sampled_from(["tictactoe", "atari/Breakout", 'odd "name" \\ é'])),
            "algo": draw(st.sampled_from(cfg.ALGOS))}
    defaults = cfg.TrainConfig()
    for section, cls in cfg.SECTIONS.items():
        base = getattr(defaults, section)
        names = [f for f in dataclasses.fields(cls)]
        chosen = draw(st.lists(st.sampled_from(names), unique_by=lambda f: f.name))
        data[section] = {f.name: draw(_field_values(
            f, getattr(base, f.name), cfg.SIZE_LIMITS.get(f"{section}.{f.name}", cfg.MAX_SETTING)))
            for f in chosen}
    return cfg.from_dict(data)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(configs())
def test_to_toml_from_dict_round_trip_is_exact(config):
    text = cfg.to_toml(config)
    again = cfg.from_dict(tomllib.loads(text))
    assert again == config
    assert cfg.to_toml(again) == text


def test_actors_may_be_written_as_a_number_in_toml():
    config = cfg.merge(cfg.TrainConfig(), tomllib.loads("[run]\nactors = 2\n"))
    assert config.run.actors == "2"
    with pytest.raises(cfg.ConfigError, match="search.root_mode must be str"):
        cfg.merge(cfg.TrainConfig(), {"search": {"root_mode": 2}})  # only actors takes numbers


# --- files and sizes a user cannot mean (tests/reliability covers the CLI) ---------------

@pytest.mark.parametrize("text, words", [
    ("game = 5\n", "game must be a string, got 5"),
    ('game = "tictactoc"\n', "unknown game 'tictactoc'"),
    ("[learner]\nbogus = 1\n", "unknown config key learner.bogus"),
    ("[learner]\nbatch_size = 4611686018427387904\n", "batch_size must be at most 65,536"),
    ("a = " + "[" * 5000 + "]" * 5000 + "\n", "nested too deeply"),
])
def test_a_config_files_errors_name_the_file(tmp_path, text, words):
    path = tmp_path / "settings.toml"
    path.write_text(text)
    with pytest.raises(cfg.ConfigError) as err:
        cfg.check_file(path, cfg.load_toml(path))
    assert str(path) in str(err.value) and words in str(err.value)


@pytest.mark.parametrize("item, limit", [
    ("network.channels=100000", "4,096"), ("search.num_simulations=2000000", "1,000,000"),
    ("replay.window_positions=4294967296", "2,147,483,647"),
])
def test_sizes_that_cannot_be_meant_are_refused(item, limit):
    with pytest.raises(cfg.ConfigError, match=f"at most {limit}"):
        cfg.merge(cfg.preset("tictactoe"), cfg.parse_overrides([item]))


def test_the_seed_may_be_any_64_bit_integer():
    config = cfg.merge(cfg.preset("tictactoe"), cfg.parse_overrides(["run.seed=9007199254740993"]))
    assert config.run.seed == 9007199254740993
