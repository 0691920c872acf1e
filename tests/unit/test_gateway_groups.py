"""The gateway's route groups declare what they use: every `self.<name>` a group reads is its
own method or a name it declares (an annotation), and the gateway service provides every
declared name as a dependency."""
import ast
import inspect
import typing

import pytest
from nameko.extensions import DependencyProvider

from gateway.routes.system import READY_SERVICES, SystemRoutes
from gateway.service import GatewayService

GROUPS = [klass for klass in GatewayService.__mro__[1:] if klass.__module__.startswith("gateway.")]


def _reads(klass):
    tree = ast.parse(inspect.getsource(klass))
    return {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name) and node.value.id == "self" and isinstance(node.ctx, ast.Load)}


def test_the_groups_are_found():
    assert len(GROUPS) >= 9


@pytest.mark.parametrize("group", GROUPS, ids=lambda klass: klass.__name__)
def test_a_group_reads_only_its_own_members_and_what_it_declares(group):
    declared = set(typing.get_type_hints(group))
    undeclared = sorted(name for name in _reads(group) if name not in declared and name not in vars(group))
    assert undeclared == []


@pytest.mark.parametrize("group", GROUPS, ids=lambda klass: klass.__name__)
def test_the_gateway_provides_what_each_group_declares(group):
    for name in typing.get_type_hints(group):
        provider = vars(GatewayService).get(name)
        assert isinstance(provider, DependencyProvider), f"{group.__name__} needs `{name}`"


def test_readiness_declares_every_service_it_pings_by_name():
    assert set(READY_SERVICES) <= set(typing.get_type_hints(SystemRoutes))
