"""Configuration fuzz targets: `--set` overrides and TOML files through selfplay.config."""

from __future__ import annotations

import functools
import tomllib
from pathlib import Path

from hypothesis import strategies as st

from tests.fuzz import strategies as S
from tests.fuzz.base import Target, Violation, expect

@functools.cache
def config_keys() -> dict[str, type]:
    """{'section.key' (and 'game', 'algo'): the type of its default}."""
    import dataclasses

    from selfplay import config as cfg

    defaults = cfg.TrainConfig()
    keys = {"game": str, "algo": str}
    for section in cfg.SECTIONS:
        for name, value in dataclasses.asdict(getattr(defaults, section)).items():
            keys[f"{section}.{name}"] = type(value)
    return keys


CONFIG_VALUES = ["1", "0", "2", "true", "false", "auto", "cpu", "cuda", "cuda:1", "gumbel",
                 "puct", "wdl", "scalar", "local", "ray", "sprt", "winrate", "off", "0.5",
                 "1e-3", "onnx", "tictactoe", "muzero", "alphazero"]
TYPED_VALUES = {
    float: ["nan", "inf", "-inf", "NaN", "1e309", "-1e309", "0.5", "-0.0", "1_0.5", "1e-3"],
    int: ["9" * 25, "9223372036854775808", "-9223372036854775809", "0", "-1", "1", "\u0663",
          "\u00b2", "1e3", "9" * 5000],
    str: ["a\x1bb", "x\x00y", "tab\there", "\udcff", "a\udc80b", "\u00e9", "\x7f", 'q"uote',
          "back\\slash", "cuda:\u00b2", "\u0663", "auto", "0"],
    bool: ["true", "false", "1", "0", "yes", "TRUE", ""],
}
"""Values for a key of each type; lone surrogates stand for undecodable bytes in argv."""
FREE_TEXT = ["game", "run.address"]
"""The settings that take any text (config.toml must still hold it)."""


@st.composite
def override_items(draw) -> str:
    """'section.key=value': a real key with a value for its type (hostile or not), or a
    mutated key, or another separator, or any value."""
    c = S.DrawChooser(draw)
    keys = config_keys()
    if draw(st.booleans()):
        key = c.pick(FREE_TEXT if draw(st.booleans()) else list(keys))
        return key + "=" + c.pick(TYPED_VALUES[keys[key]])
    key = c.pick(list(keys)) if draw(st.booleans()) else S.mutate_line(list(keys), c).rstrip(
        "\r\n")
    sep = c.pick(["=", "=", " = ", "", "==", ":", "=\n"])
    kind = c.number(0, 2)
    value = (c.pick(S.HOSTILE) if kind == 0 else c.pick(CONFIG_VALUES) if kind == 1
             else draw(S.random_text(20)))
    return key + sep + value


def override_lists():
    return st.lists(st.one_of(override_items(), override_items(), override_items(),
                              S.random_text(30)), min_size=1, max_size=4)


def check_config_round_trip(config, given) -> None:
    """An accepted configuration is written as TOML that reads back to itself."""
    from selfplay import config as cfg

    text = cfg.to_toml(config)
    try:
        data = tomllib.loads(text.encode("utf-8").decode("utf-8"))  # as written and read
    except (UnicodeError, tomllib.TOMLDecodeError) as e:
        raise Violation(f"config.toml cannot be written or read ({e})\n  input: {given!r}") \
            from None
    again = cfg.from_dict(data)
    expect(again == config, "config.toml reads back to another configuration", given, text)
    expect(cfg.to_toml(again) == text, "config.toml is not stable", given, text)


def check_merged(build, given) -> None:
    """build() gives a config (then it must round-trip) or a one-line ConfigError."""
    from selfplay import config as cfg

    try:
        config = build()
    except cfg.ConfigError as e:
        expect("\n" not in str(e), "a ConfigError of several lines", given, str(e))
        return
    except Exception as e:
        raise Violation(f"{type(e).__name__}: {e}\n  input: {given!r}") from e
    check_config_round_trip(config, given)


class ConfigTarget(Target):
    """parse_overrides + merge over the tictactoe preset, then the TOML round trip."""

    name = "config"
    inputs_strategy = staticmethod(override_lists)

    def open(self, workdir: Path) -> None:
        from selfplay import config as cfg

        self.base = cfg.preset("tictactoe")

    def check(self, items: list[str]) -> None:
        from selfplay import config as cfg

        self.inputs += 1
        check_merged(lambda: cfg.merge(self.base, cfg.parse_overrides(items)), items)


def _preset_texts() -> list[str]:
    from selfplay import config as cfg

    return [p.read_text(encoding="utf-8") for p in sorted(cfg.PRESETS.glob("*.toml"))]


@st.composite
def toml_files(draw) -> bytes:
    """A preset file with lines dropped, repeated, swapped or mutated; or random bytes."""
    kind = draw(st.integers(0, 9))
    if kind == 0:
        return draw(st.binary(max_size=200))
    lines = draw(st.sampled_from(_preset_texts())).splitlines()
    c = S.DrawChooser(draw)
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(lines) - 1))
        op = draw(st.sampled_from(["drop", "dup", "swap", "mutate", "value", "section"]))
        if op == "drop":
            lines.pop(i)
        elif op == "dup":
            lines.insert(i, lines[i])
        elif op == "swap":
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        elif op == "mutate":
            lines[i] = " ".join(S.mutate(lines[i].split(" "), c, S.HOSTILE))
        elif op == "value" and "=" in lines[i]:
            key = lines[i].split("=", 1)[0]
            lines[i] = key + "= " + draw(st.sampled_from(
                ["nan", "inf", "-inf", "1e309", "-1", "0", "99999999999999999999", "9" * 5000,
                 '"x"',
                 "true", "[1, 2]", "{a = 1}", "1979-05-27", '"\\u0000"', '"a\\nb"', "3.5",
                 '"auto"', "'''x'''"]))
        else:
            lines.insert(i, draw(st.sampled_from(["[search]", "[nope]", "[run]", "[[run]]",
                                                  "game = 3", "algo = \"x\"", "[search.x]"])))
        if not lines:
            lines = [""]
    ending = draw(st.sampled_from(["\n", "\r\n", ""]))
    return ending.join(lines).encode("utf-8", "surrogatepass")


class TomlTarget(Target):
    """load_toml of a mutated preset file, merged over the tictactoe preset."""

    name = "toml"
    inputs_strategy = staticmethod(toml_files)

    def open(self, workdir: Path) -> None:
        from selfplay import config as cfg

        self.base = cfg.preset("tictactoe")

    def check(self, data: bytes) -> None:
        from selfplay import config as cfg

        self.inputs += 1
        path = Path("fuzz.toml")
        path.write_bytes(data)
        check_merged(lambda: cfg.merge(self.base, cfg.load_toml(path)), data)
