import pytest

from ansible_collections.gridvirt.kvm.plugins.module_utils._address import registry
from ansible_collections.gridvirt.kvm.plugins.module_utils._address.pools import Pool
from ansible_collections.gridvirt.kvm.plugins.module_utils._address.registry import Ask, State
from ansible_collections.gridvirt.kvm.plugins.module_utils._common.errors import VmError


def committed(state):
    values = dict(state.values)
    for key, value in state.writes.items():
        if value is None:
            values.pop(key, None)
        else:
            values[key] = value
    return values


def run(values, operation, now=1000.0):
    state = State(values, now=now)
    result = operation(state)
    return result, committed(state)


def with_pool(**kwargs):
    pool = Pool(**dict(dict(name="p", cidr="10.0.0.0/29"), **kwargs))
    _r, values = run({}, lambda s: registry.put_pool(s, pool))
    return values


def test_first_candidate_is_derived_so_two_registries_agree():
    one = run(with_pool(), lambda s: registry.allocate(s, Ask("vm", 0, pool="p")))[0][1]
    two = run(with_pool(), lambda s: registry.allocate(s, Ask("vm", 0, pool="p")))[0][1]
    assert one == two


def test_collision_with_the_derived_candidate_takes_another():
    values = with_pool()
    (_c, first), values = run(values, lambda s: registry.allocate(s, Ask("a", 0, pool="p")))
    fixed = Ask("b", 0, pool="p", ip=None, mac=None)
    (_c, second), values = run(values, lambda s: registry.allocate(s, fixed))
    assert second["ip"] != first["ip"] and second["mac"] != first["mac"]


def test_hold_expires():
    values = with_pool(ranges=["10.0.0.2-10.0.0.3"], release_hold=100)
    (_c, a), values = run(values, lambda s: registry.allocate(s, Ask("a", 0, pool="p")))
    _r, values = run(values, lambda s: registry.release(s, "a"), now=1000)
    # Within the hold another VM avoids it; after it, the derived candidate decides.
    (_c, b), _v = run(values, lambda s: registry.allocate(s, Ask("b", 0, pool="p")), now=1050)
    assert b["ip"] != a["ip"]
    candidates = list(Pool("p", "10.0.0.0/29", ranges=["10.0.0.2-10.0.0.3"]).candidates("b", 0))
    (_c, late), _v = run(values, lambda s: registry.allocate(s, Ask("b", 0, pool="p")), now=1200)
    assert late["ip"] == candidates[0]


def test_moving_a_nic_to_another_pool_keeps_its_mac():
    values = with_pool()
    pool_q = Pool("q", "10.1.0.0/29")
    _r, values = run(values, lambda s: registry.put_pool(s, pool_q))
    (_c, a), values = run(values, lambda s: registry.allocate(s, Ask("a", 0, pool="p")))
    (changed, moved), _v = run(values, lambda s: registry.allocate(s, Ask("a", 0, pool="q")))
    assert changed and moved["mac"] == a["mac"] and moved["ip"].startswith("10.1.0.")


def test_ip_without_pool_and_overlap_are_refused():
    values = with_pool()
    with pytest.raises(VmError, match="needs a pool"):
        run(values, lambda s: registry.allocate(s, Ask("a", 0, ip="10.0.0.2")))
    with pytest.raises(VmError, match="overlap pool p"):
        run(values, lambda s: registry.put_pool(s, Pool("q", "10.0.0.0/24")))


def test_removing_a_pool_drops_its_released_records():
    values = with_pool()
    _r, values = run(values, lambda s: registry.allocate(s, Ask("a", 0, pool="p")))
    _r, values = run(values, lambda s: registry.release(s, "a"))
    (changed, _before), values = run(values, lambda s: registry.remove_pool(s, "p"))
    assert changed and values == {}
