"""The README documents every setting: a new NAS_ variable without a line in the table fails here."""

from pathlib import Path

from api.settings import Settings

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def test_every_setting_is_in_the_readme():
    missing = [f"NAS_{name.upper()}" for name in Settings.model_fields if f"NAS_{name.upper()}" not in README]
    assert not missing, f"document these settings in README.md: {missing}"


def test_the_readme_shows_the_two_commands():
    assert "make demo" in README and "make test" in README
