"""The folders a move tries to remove (engine/transfer_move.EmptiedFolders): those its
deletions emptied and their parents, children first, never the source root or above."""

from __future__ import annotations

from lakeshift.engine.transfer_move import EmptiedFolders


def test_emptied_folders_and_their_parents_below_the_root_children_first() -> None:
    emptied = EmptiedFolders("logs/")
    for key in ("logs/2024-01/a/b.csv", "logs/2024-01/c.csv", "logs/top.csv",
                "logs/empty/", "other/x.csv", "logs"):
        emptied.moved(key)
    assert emptied.candidates() == ["logs/empty/", "logs/2024-01/a/", "logs/2024-01/"]


def test_a_source_named_at_the_store_root_keeps_its_root() -> None:
    emptied = EmptiedFolders("")
    for key in ("top.txt", "a/b/c.txt"):
        emptied.moved(key)
    assert emptied.candidates() == ["a/b/", "a/"]
