"""Files other users can write are never trusted: configs, include roots, runtime folders.

The tests run as root (as CI does) and play the other user by giving files to ``nobody``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from runbook.errors import ConfigError, StateError
from runbook.guide import load
from runbook.runtime import prepare as runtime_dir
from runbook.site import load_site

NOBODY = 65534
GUIDE = "# G\n\n* [ ] 1. Go\n\n### 1. Go\n\n```bash { .run }\necho <who>\n```\n"
PLANTED = "site_name: planted\nplugins:\n  - runbook:\n      inputs:\n        who: attacker\n"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to play another user")


def test_the_search_for_mkdocs_yml_stops_at_a_folder_others_can_write(tmp_path: Path) -> None:
    shared = tmp_path / "shared"  # like /tmp: anyone may create files here
    shared.mkdir()
    shared.chmod(0o1777)
    (shared / "mkdocs.yml").write_text(PLANTED)
    os.chown(shared / "mkdocs.yml", NOBODY, NOBODY)
    mine = shared / "mine"
    mine.mkdir(mode=0o755)
    (mine / "guide.md").write_text(GUIDE)
    site = load_site(mine / "guide.md")
    assert site.config_file is None  # a lone guide: its own folder is its root
    book = load(mine / "guide.md")
    assert "who" not in load_site(mine / "guide.md").inputs
    assert book.runtime_dir == mine / ".runbook"


def test_a_config_another_user_owns_or_can_write_is_refused(tmp_path: Path) -> None:
    (tmp_path / "guide.md").write_text(GUIDE)
    config = tmp_path / "mkdocs.yml"
    config.write_text(PLANTED)
    os.chown(config, NOBODY, NOBODY)
    with pytest.raises(ConfigError, match="belongs to user nobody") as owned:
        load(tmp_path / "guide.md")
    assert owned.value.hint and "chmod go-w" in owned.value.hint
    os.chown(config, 0, 0)
    config.chmod(0o666)
    with pytest.raises(ConfigError, match="can be written by other users"):
        load(tmp_path / "guide.md")
    config.chmod(0o644)
    assert load_site(tmp_path / "guide.md").inputs == {"who": "attacker"}  # now it is ours


def test_an_include_folder_others_can_write_is_refused(tmp_path: Path) -> None:
    (tmp_path / "mkdocs.yml").write_text(
        "site_name: s\nplugins:\n  - runbook:\n      include_dir: inc\n"
    )
    (tmp_path / "inc").mkdir()
    (tmp_path / "inc").chmod(0o777)
    (tmp_path / "guide.md").write_text(GUIDE)
    with pytest.raises(ConfigError, match=r"include folder .* can be written by other users"):
        load(tmp_path / "guide.md")


def test_a_lone_guide_in_a_shared_folder_keeps_its_records_in_the_users_state_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    (shared / "guide.md").write_text(GUIDE)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    book = load(shared / "guide.md")
    assert book.runtime_dir is not None
    assert book.runtime_dir.is_relative_to(tmp_path / "state" / "runbook")
    assert runtime_dir(book).is_dir()
    assert not (shared / ".runbook").exists()


def test_a_planted_runtime_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "guide.md").write_text(GUIDE)
    target = tmp_path / "elsewhere"
    target.mkdir()
    (tmp_path / ".runbook").symlink_to(target)
    book = load(tmp_path / "guide.md")
    with pytest.raises(StateError, match="symbolic link"):
        runtime_dir(book)
    (tmp_path / ".runbook").unlink()
    (tmp_path / ".runbook").mkdir()
    os.chown(tmp_path / ".runbook", NOBODY, NOBODY)
    with pytest.raises(StateError, match="not a private folder of yours"):
        runtime_dir(book)
    assert list(target.iterdir()) == []
