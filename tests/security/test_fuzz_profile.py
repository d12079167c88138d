"""Fuzzing device profiles: random text and mutated shipped profiles parse or raise one ProfileError line."""

from __future__ import annotations

from importlib import resources

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devices.profile_settings import DeviceProfile
from devices.profiles import ProfileError, list_profiles, parse_profile

from .fuzzing import FUZZ, assert_one_line

SHIPPED = [resources.files("devices").joinpath(f"{n}.toml").read_text() for n in list_profiles()]

toml_literals = st.sampled_from(
    ['""', '"x"', "0", "-1", "1e400", "nan", "inf", "true", "[]", "[1, 2]", "{}", "{a = 1}", "1979-05-27",
     '"cuda:9"', '"GPU.x"', "224.5", "99999999999999999999", '"{unknown}"', "'''\n'''", "[[1]]"]
)  # fmt: skip


@st.composite
def mutated_profiles(draw) -> str:
    """A shipped profile with 1..4 lines changed: a value replaced, a line deleted / duplicated / garbled."""
    lines = draw(st.sampled_from(SHIPPED)).splitlines()
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(lines) - 1))
        op = draw(st.sampled_from(["value", "delete", "duplicate", "garble", "rename"]))
        key, sep, _ = lines[i].partition("=")
        if op == "value" and sep:
            lines[i] = f"{key}= {draw(toml_literals)}"
        elif op == "delete":
            del lines[i]
            lines = lines or [""]
        elif op == "duplicate":
            lines.insert(i, lines[i])
        elif op == "garble":
            at = draw(st.integers(0, len(lines[i])))
            lines[i] = lines[i][:at] + draw(st.text(max_size=6)) + lines[i][at:]
        elif sep:
            lines[i] = (
                f"{draw(st.text(alphabet='abcdefghijklmnopqrstuvwxyz_', min_size=1, max_size=12))} ={_}"
            )
    return "\n".join(lines)


def _parse_or_one_line(text: str, counts: dict[str, int]) -> None:
    counts["examples"] += 1
    try:
        assert isinstance(parse_profile(text, name="fuzz", where="fuzz.toml"), DeviceProfile)
    except ProfileError as exc:
        counts["refused"] += 1
        assert_one_line(exc, "fuzz.toml")


def test_mutated_profiles_parse_or_raise_one_profile_error_line():
    counts = {"examples": 0, "refused": 0}
    given(mutated_profiles())(FUZZ(lambda text: _parse_or_one_line(text, counts)))()
    print(f"\n[fuzz profile mutated] examples={counts['examples']} refused={counts['refused']}")
    assert counts["examples"] >= 1000 and counts["refused"] > 0


def test_random_text_profiles_raise_one_profile_error_line():
    counts = {"examples": 0, "refused": 0}
    given(st.text(max_size=300))(FUZZ(lambda text: _parse_or_one_line(text, counts)))()
    print(f"\n[fuzz profile random text] examples={counts['examples']} refused={counts['refused']}")
    assert counts["examples"] >= 1000 and counts["refused"] == counts["examples"]


@pytest.mark.parametrize("nested", ["a = " + "[" * 100_000, "a = " + "{b = " * 100_000])
def test_deeply_nested_toml_is_refused_with_one_line(nested):
    with pytest.raises(ProfileError) as info:
        parse_profile(nested, name="fuzz", where="fuzz.toml")
    assert_one_line(info.value, "fuzz.toml")
