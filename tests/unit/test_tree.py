"""The team and region trees: materialised paths, moves, cycles, subtree and ancestors."""

import pytest
from django.core.exceptions import ValidationError

from loudou.org.models import Region, Team

pytestmark = pytest.mark.django_db


def p(*nodes):
    """The path a node at the end of ``nodes`` (root first) must have."""
    return "".join(f"{node.pk:08d}/" for node in nodes)


def test_root_path_is_its_own_id():
    """A root node's path is its zero-padded id followed by a slash."""
    root = Team.objects.create(name="East")
    assert root.path == f"{root.pk:08d}/"
    assert Team.objects.get(pk=root.pk).path == root.path


def test_child_path_extends_parent_path():
    """A new child's path is its parent's path plus its own id, in memory and stored."""
    east = Team.objects.create(name="East")
    sub = Team.objects.create(name="Sub", parent=east)
    leaf = Team.objects.create(name="Leaf", parent=sub)
    assert leaf.path == p(east, sub, leaf)
    assert Team.objects.get(pk=leaf.pk).path == p(east, sub, leaf)
    assert [east.depth, sub.depth, leaf.depth] == [0, 1, 2]


def test_region_tree_uses_same_paths():
    """Regions keep their paths exactly like teams."""
    east = Region.objects.create(name="华东区")
    shanghai = Region.objects.create(name="上海", parent=east)
    assert Region.objects.get(pk=shanghai.pk).path == p(east, shanghai)


def test_moving_a_node_rebases_all_descendants():
    """Moving a node under another parent rewrites its path and its whole subtree's."""
    east = Team.objects.create(name="East")
    south = Team.objects.create(name="South")
    sub = Team.objects.create(name="Sub", parent=east)
    leaf = Team.objects.create(name="Leaf", parent=sub)
    leaf2 = Team.objects.create(name="Leaf 2", parent=leaf)

    sub.parent = south
    sub.save()

    paths = dict(Team.objects.values_list("name", "path"))
    assert paths == {
        "East": p(east),
        "South": p(south),
        "Sub": p(south, sub),
        "Leaf": p(south, sub, leaf),
        "Leaf 2": p(south, sub, leaf, leaf2),
    }


def test_moving_a_node_to_the_root():
    """A node moved to the top becomes a root, with its descendants under it."""
    east = Team.objects.create(name="East")
    sub = Team.objects.create(name="Sub", parent=east)
    leaf = Team.objects.create(name="Leaf", parent=sub)

    sub.parent = None
    sub.save()

    assert Team.objects.get(pk=sub.pk).path == p(sub)
    assert Team.objects.get(pk=leaf.pk).path == p(sub, leaf)
    assert Team.objects.get(pk=east.pk).path == p(east)


def test_moving_with_update_fields_still_writes_path():
    """A save limited to ``parent`` still stores the new path."""
    east = Team.objects.create(name="East")
    south = Team.objects.create(name="South")
    sub = Team.objects.create(name="Sub", parent=east)
    sub.parent = south
    sub.save(update_fields=["parent"])
    assert Team.objects.get(pk=sub.pk).path == p(south, sub)


def test_move_leaves_nodes_outside_the_subtree_alone():
    """Moving a node rewrites its subtree only, even among ten nodes whose ids share digits."""
    first = Team.objects.create(name="First")
    others = [Team.objects.create(name=f"T{i}") for i in range(10)]
    target = others[-1]
    child = Team.objects.create(name="Child", parent=first)
    before = {t.pk: Team.objects.get(pk=t.pk).path for t in others}

    first.parent = target
    first.save()

    assert Team.objects.get(pk=child.pk).path == p(target, first, child)
    assert {t.pk: Team.objects.get(pk=t.pk).path for t in others} == before


def test_clean_refuses_own_descendant_as_parent():
    """clean() refuses to put a node under its own descendant, and nothing is saved."""
    east = Team.objects.create(name="East")
    sub = Team.objects.create(name="Sub", parent=east)
    leaf = Team.objects.create(name="Leaf", parent=sub)

    east.parent = leaf
    with pytest.raises(ValidationError) as excinfo:
        east.clean()
    assert list(excinfo.value.message_dict) == ["parent"]
    assert Team.objects.get(pk=east.pk).parent_id is None


def test_clean_refuses_self_as_parent():
    """clean() refuses a node as its own parent."""
    east = Team.objects.create(name="East")
    east.parent = east
    with pytest.raises(ValidationError) as excinfo:
        east.clean()
    assert list(excinfo.value.message_dict) == ["parent"]


def test_save_refuses_a_cycle_and_changes_nothing():
    """Saving a node under its own descendant, without calling clean(), is refused and
    leaves every stored path and parent as it was."""
    east = Team.objects.create(name="East")
    sub = Team.objects.create(name="Sub", parent=east)
    leaf = Team.objects.create(name="Leaf", parent=sub)
    before = list(Team.objects.order_by("pk").values_list("pk", "parent_id", "path"))
    east.parent = leaf
    with pytest.raises(ValidationError):
        east.save()
    self_loop = Team.objects.get(pk=sub.pk)
    self_loop.parent_id = sub.pk
    with pytest.raises(ValidationError):
        self_loop.save()
    assert list(Team.objects.order_by("pk").values_list("pk", "parent_id", "path")) == before


def test_clean_accepts_a_move_elsewhere():
    """clean() lets a node move under an unrelated node."""
    east = Team.objects.create(name="East")
    south = Team.objects.create(name="South")
    sub = Team.objects.create(name="Sub", parent=east)
    sub.parent = south
    sub.clean()  # does not raise
    sub.save()
    assert Team.objects.get(pk=sub.pk).path == p(south, sub)


def test_subtree_is_node_and_everything_below():
    """subtree() holds the node and all its descendants, and no sibling."""
    east = Team.objects.create(name="East")
    sub = Team.objects.create(name="Sub", parent=east)
    leaf = Team.objects.create(name="Leaf", parent=sub)
    Team.objects.create(name="South")
    assert list(east.subtree()) == [east, sub, leaf]
    assert list(sub.subtree()) == [sub, leaf]
    assert list(leaf.subtree()) == [leaf]


def test_ancestors_root_first_without_self():
    """ancestors() lists the nodes above, root first, without the node itself."""
    east = Team.objects.create(name="East")
    sub = Team.objects.create(name="Sub", parent=east)
    leaf = Team.objects.create(name="Leaf", parent=sub)
    assert list(leaf.ancestors()) == [east, sub]
    assert list(east.ancestors()) == []
