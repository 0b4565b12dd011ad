"""The file:// backend never reads outside its folder, and names are ESC names everywhere.

Regression tests for the hostile review's item 1: ``imports: [../outside]`` (and ``open
../outside``) read ``<DIR>/../outside.yaml``, a file beside the store.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from esc_pulumi.backends.local import LocalBackend
from esc_pulumi.errors import BackendError, DefinitionError, EnvironmentNotFound, EscError, InvalidReference
from esc_pulumi.esc import to_plain
from esc_pulumi import refs
from esc_pulumi.refs import EnvironmentRef

OUTSIDE = "values:\n  stolen: outside-plaintext-7d1c\n"


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """``tmp/envs`` with ``default/dev.yaml``, and a definition *beside* it, outside the store."""
    envs = tmp_path / "envs"
    (envs / "default").mkdir(parents=True)
    (envs / "myproj").mkdir()
    (envs / "default" / "dev.yaml").write_text("values:\n  a: 1\n")
    (tmp_path / "outside.yaml").write_text(OUTSIDE)
    (tmp_path / "default").mkdir()
    (tmp_path / "default" / "outside.yaml").write_text(OUTSIDE)
    return envs


# -- the name rules: one implementation (refs.py) ------------------------------------------------


@pytest.mark.parametrize(
    "ref, bad",
    [
        ("../outside", "'..'"),
        ("./dev", "'.'"),
        ("proj/..", "'..'"),
        ("..", "'..'"),
        ("proj/.", "'.'"),
        ("yaml/dev", "'yaml'"),
        ("proj/open", "'open'"),
        ("proj/yaml", "'yaml'"),
        ("dev@..", "'..'"),
        ("p" * 101 + "/dev", "'" + "p" * 101 + "'"),
        ("proj/a b", "'a b'"),
        ("proj/dev@a/b", "a/b"),
    ],
)
def test_refs_refuse_what_the_server_refuses(ref, bad):
    with pytest.raises(InvalidReference) as info:
        EnvironmentRef.parse(ref)
    message = str(info.value)
    assert repr(ref) in message and bad in message


@pytest.mark.parametrize("ref", ["dev", "proj/dev", "proj/dev@stable", "proj/dev@3", "a.b/c-d_e", "..a/b..", "p" * 100 + "/dev"])
def test_valid_names_still_parse(ref):
    assert EnvironmentRef.parse(ref).name


def test_name_problem_matches_the_servers_rules():
    problem = refs.name_problem
    assert problem("project", "yaml") is not None and problem("environment", "yaml") is not None
    assert problem("environment", "open") is not None and problem("project", "open") is None
    assert problem("organization", "-org") is not None and problem("organization", "acme") is None
    assert problem("tag", "v1.2") is None and problem("tag", "..") is not None
    with pytest.raises(InvalidReference, match=r"invalid environment name '\.\.'"):
        refs.check_name("environment", "..")
    assert refs.check_name("project", "myproj") == "myproj"


# -- the local backend -------------------------------------------------------------------------


def test_import_of_a_dotdot_project_is_refused_and_named(store):
    backend = LocalBackend(store)
    with pytest.raises(DefinitionError) as info:
        backend.open({"imports": ["../outside"]})
    message = str(info.value)
    assert "'../outside'" in message and "'..'" in message
    assert "outside-plaintext-7d1c" not in message


def test_dotdot_never_reaches_the_file_system(store):
    backend = LocalBackend(store)
    for name in ("../outside", "default/../../outside", "proj/.."):
        with pytest.raises(InvalidReference):
            backend.path_of(name)
        with pytest.raises(InvalidReference):
            backend.read_definition(name)


def test_inline_reference_through_dotdot_is_refused(store):
    (store / "default" / "ref.yaml").write_text('values:\n  x: ${environments[".."].outside.stolen}\n')
    with pytest.raises(DefinitionError) as info:
        LocalBackend(store).open({"imports": ["ref"]})
    assert "outside-plaintext-7d1c" not in str(info.value) and "'../outside'" in str(info.value)


def test_symlink_leading_outside_is_refused(store, tmp_path):
    (store / "myproj" / "leak.yaml").symlink_to(tmp_path / "outside.yaml")
    backend = LocalBackend(store)
    with pytest.raises(BackendError, match="leads outside the local ESC folder") as info:
        backend.read_definition("myproj/leak")
    assert "'myproj/leak'" in str(info.value)
    with pytest.raises(DefinitionError, match="leads outside") as info2:
        backend.open({"imports": ["myproj/leak"]})
    assert "outside-plaintext-7d1c" not in str(info2.value)


def test_symlinked_project_folder_leading_outside_is_refused(store, tmp_path):
    (store / "elsewhere").symlink_to(tmp_path / "default", target_is_directory=True)
    with pytest.raises(BackendError, match="leads outside"):
        LocalBackend(store).read_definition("elsewhere/outside")
    # A missing file under such a link is refused too, not reported as "not found" below it.
    with pytest.raises(BackendError, match="leads outside"):
        LocalBackend(store).path_of("elsewhere/missing")


def test_pinned_tag_through_a_link_leading_outside_is_refused(store, tmp_path):
    (store / "myproj" / "dev@stable.yaml").symlink_to(tmp_path / "outside.yaml")
    with pytest.raises(BackendError, match="leads outside"):
        LocalBackend(store).read_definition("myproj/dev@stable")


def test_symlinks_inside_the_folder_are_followed(store):
    (store / "myproj" / "alias.yaml").symlink_to(store / "default" / "dev.yaml")
    (store / "shared").symlink_to(store / "default", target_is_directory=True)
    opened = LocalBackend(store).open({"imports": ["myproj/alias", "shared/dev"]})
    assert to_plain(opened.value) == {"a": 1}


def test_the_store_itself_may_be_a_link(store, tmp_path):
    link = tmp_path / "link-to-envs"
    link.symlink_to(store, target_is_directory=True)
    opened = LocalBackend(link).open({"imports": ["dev"]})
    assert to_plain(opened.value) == {"a": 1}


def test_missing_environment_is_still_not_found(store):
    with pytest.raises(EnvironmentNotFound, match="'myproj/nope'"):
        LocalBackend(store).open({"imports": ["myproj/nope"]})


def test_a_folder_named_like_a_definition_is_a_clear_error(store):
    (store / "myproj" / "dir.yaml").mkdir()
    with pytest.raises(EscError, match="cannot read"):
        LocalBackend(store).read_definition("myproj/dir")


def test_the_checked_file_is_opened_without_following_a_link(store, tmp_path, monkeypatch):
    """A link swapped in after the check is not followed: the last step is opened O_NOFOLLOW."""
    target = store / "myproj" / "swap.yaml"
    target.write_text("values:\n  a: inside\n")
    backend = LocalBackend(store)
    real_inside = backend._inside

    def inside_then_swap(name: str, path: Path) -> Path:
        real = real_inside(name, path)
        if path.name == "swap.yaml" and not target.is_symlink():
            target.unlink()
            target.symlink_to(tmp_path / "outside.yaml")
        return real

    monkeypatch.setattr(backend, "_inside", inside_then_swap)
    with pytest.raises(EscError) as info:
        backend.read_definition("myproj/swap")
    assert "outside-plaintext-7d1c" not in str(info.value)


@pytest.mark.skipif(not hasattr(os, "O_NOFOLLOW"), reason="needs O_NOFOLLOW")
def test_plain_reads_still_work(store):
    assert LocalBackend(store).read_definition("dev") == "values:\n  a: 1\n"
