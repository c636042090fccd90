"""Fuzzing the configuration parser (`--set` overrides, TOML files) and the CLI's
argument parsing: bad input is a ConfigError, or exit status 2 with one line."""

from __future__ import annotations

import pytest
from hypothesis import given, settings

from tests.fuzz.cli_targets import CliTarget
from tests.fuzz.config_targets import ConfigTarget, TomlTarget

# The configuration parser: 600 lists of 1-4 `--set` items and 400 TOML files (1,000
# inputs); the CLI: 1,000 argvs.
OVERRIDES = settings(max_examples=600, deadline=None, derandomize=True, database=None)
FILES = settings(max_examples=400, deadline=None, derandomize=True, database=None)
ARGVS = settings(max_examples=1000, deadline=None, derandomize=True, database=None)


@pytest.fixture(scope="module")
def target(open_target):
    return open_target


@OVERRIDES
@given(items=ConfigTarget.inputs_strategy())
def test_overrides_raise_only_config_errors(target, items):
    target("config").check(items)


@FILES
@given(data=TomlTarget.inputs_strategy())
def test_toml_files_raise_only_config_errors(target, data):
    target("toml").check(data)


@ARGVS
@given(argv=CliTarget.inputs_strategy())
def test_cli_exits_0_or_2_with_one_line(target, argv):
    cli = target("cli")
    with cli.session():
        cli.check(argv)


# What the fuzz found ---------------------------------------------------------------

@pytest.mark.parametrize("data", [
    {"game": "a\x1bb"}, {"game": "tab\tand\nnewline\rand\x00nul\x7f"},
    {"run": {"address": "host\x02:6379"}},
])
def test_config_toml_escapes_control_characters(data):
    """to_toml wrote them raw: config.toml was not TOML and the run could not resume."""
    import tomllib

    from selfplay import config as cfg

    config = cfg.merge(cfg.TrainConfig(), data)
    assert cfg.from_dict(tomllib.loads(cfg.to_toml(config))) == config


@pytest.mark.parametrize("data, message", [
    ({"search": {"c_scale": "nan"}}, "c_scale must be a finite number"),
    ({"search": {"pb_c_init": float("nan")}}, "pb_c_init must be a finite number"),
    ({"learner": {"learning_rate": "inf"}}, "learning_rate must be a finite number"),
    ({"learner": {"learning_rate": 10**400}}, "learning_rate must be a finite number"),
    ({"run": {"seed": 2**63}}, "seed must be an integer of at most 64 bits"),
    ({"search": {"num_simulations": "9" * 30}}, "num_simulations must be an integer of at"),
    ({"run": {"address": "\udcff"}}, "run.address must be valid Unicode text"),
    ({"game": "a\udc80"}, "game must be valid Unicode text"),
    ({"run": {"actors": "\u00b2"}}, "actors must be auto or a number"),
    ({"run": {"actors": "\u0663"}}, "actors must be auto or a number"),
    ({"run": {"device": "cuda:\u00b2"}}, "device must be cpu, cuda or cuda:N"),
])
def test_values_config_toml_cannot_hold_are_config_errors(data, message):
    """NaN was accepted and read back as another NaN (nan != nan): the same command could
    not resume its run. 10**400 for a float raised OverflowError; ints past 64 bits and
    lone surrogates (undecodable argv bytes) made a config.toml no TOML reader takes;
    '\u00b2' passed str.isdigit() and failed int()."""
    from selfplay import config as cfg

    with pytest.raises(cfg.ConfigError, match=message):
        cfg.merge(cfg.TrainConfig(), data)


@pytest.mark.parametrize("content, message", [
    (b"\x80[search]", "is not UTF-8 text"), (None, "is a directory"),
    (b"[muzero]\ntd_steps = " + b"9" * 5000 + b"\n", "is not valid TOML")])
def test_load_toml_refuses_bytes_and_directories(tmp_path, content, message):
    """tomllib's UnicodeDecodeError, IsADirectoryError and the ValueError of int() of
    more than 4300 digits were not ConfigErrors."""
    from selfplay import config as cfg

    path = tmp_path / "c.toml"
    if content is None:
        path.mkdir()
    else:
        path.write_bytes(content)
    with pytest.raises(cfg.ConfigError, match=message):
        cfg.load_toml(path)


@pytest.mark.parametrize("argv", [["train", "a\nb"], ["gtp", "--sims", "x\ny"],
                                  ["uci", "--nodes", "1\r2"]])
def test_argparse_errors_stay_on_one_line(argv):
    """argparse quoted an argument holding a newline: the reason took two lines."""
    from tests.fuzz.cli_targets import check_cli_exit, run_cli

    code, _, err = run_cli(argv)
    check_cli_exit(argv, code, err)
    assert code == 2 and ("\\n" in err or "\\r" in err), err
