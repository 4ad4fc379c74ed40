"""--include / --exclude: every rule the README documents, and the edge cases of brackets."""

from __future__ import annotations

import pytest

from lakeshift.errors import UsageError
from lakeshift.plan.filters import NameFilter


@pytest.mark.parametrize("pattern,rel,taken", [
    # * and ? stay within one folder
    ("logs/*.csv", "logs/b.csv", True),
    ("logs/*.csv", "logs/x/b.csv", False),
    ("logs/?.csv", "logs/b.csv", True),
    ("logs/?.csv", "logs/bb.csv", False),
    ("a?c/x", "a/c/x", False),
    ("a*c/x", "a/b/c/x", False),
    # ** crosses folders, also zero of them
    ("logs/**/*.csv", "logs/x/y/b.csv", True),
    ("logs/**/*.csv", "logs/b.csv", True),
    ("logs/**", "logs/x/y/b.csv", True),
    ("**/b.csv", "x/y/b.csv", True),
    # a pattern without / matches the file name at any depth
    ("*.csv", "b.csv", True),
    ("*.csv", "deep/dir/b.csv", True),
    ("*.csv", "deep/dir.csv/b.json", False),
    ("b.csv", "x/y/b.csv", True),
    # a pattern with / is matched against the whole relative name
    ("x/b.csv", "y/x/b.csv", False),
    ("/b.csv", "b.csv", True),
    ("/b.csv", "x/b.csv", False),
    # brackets: one character, never "/"
    ("a[bc]d", "abd", True),
    ("a[b-d]e", "ace", True),
    ("a[!b]c", "axc", True),
    ("a[!b]c", "abc", False),
    ("x/a[!b]c", "x/a/c", False),
    ("x/a[^b]c", "x/a/c", False),
    ("x/a[/]c", "x/a/c", False),
    # a "!" that is not first is a plain "!"
    ("a[a!b]c", "a!c", True),
    ("a[a!b]c", "abc", True),
    ("a[a!b]c", "axc", False),
    # a "]" first in the brackets is in the set; [[] and \[ are a plain "["
    ("a[]]b", "a]b", True),
    ("a[!]]b", "a]b", False),
    ("a[[]b", "a[b", True),
    (r"a\[b", "a[b", True),
    # case-sensitive, and * takes dot-files
    ("*.csv", "B.CSV", False),
    ("*.csv", "x/.hidden.csv", True),
    # an escaped * is a plain *
    (r"a\*b", "a*b", True),
    (r"a\*b", "axb", False),
])
def test_include_rule(pattern: str, rel: str, taken: bool) -> None:
    assert NameFilter((pattern,))(rel) is taken


def test_exclude_wins_over_include_and_none_includes_all() -> None:
    f = NameFilter(("*.csv",), ("_tmp/**", "bad*"))
    assert f("a/ok.csv")
    assert not f("_tmp/a.csv")
    assert not f("x/bad.csv")
    assert not f("x/ok.json")
    assert NameFilter()("anything/at/all")
    assert not NameFilter((), ("*.tmp",))("a/b.tmp")


@pytest.mark.parametrize("include,exclude,needle", [
    (("a[z-a]b",), (), "--include 'a[z-a]b' can match nothing"),
    ((), ("x[9-0]",), "--exclude 'x[9-0]' can match nothing"),
    (("",), (), "--include '': empty pattern"),
    (("/",), (), "empty pattern"),
    # a "[" without its "]": a slip, refused rather than matched as a plain "["
    (("a[]b",), (), "--include 'a[]b' is not a valid glob: the '[' at character 2 has no "
                    "closing ']'"),
    ((), ("x/a[b",), "--exclude 'x/a[b' is not a valid glob"),
    (("a[!]",), (), "write [[] or \\["),
])
def test_a_glob_that_cannot_work_is_a_usage_error(include: tuple[str, ...],
                                                  exclude: tuple[str, ...],
                                                  needle: str) -> None:
    with pytest.raises(UsageError) as e:
        NameFilter(include, exclude)
    assert needle in str(e.value)
    assert e.value.exit_code == 2
    assert "\n" not in str(e.value)
