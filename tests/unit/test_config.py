"""baryon.config: Neutron-format INI files -> typed ``Settings`` (loader.py, options.py)."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from baryon.config import ConfigError, Settings, load
from baryon.config import options
from baryon.config.options import VlanRange, parse_tunnel_ranges, parse_vlan_ranges
from tests.support.samples import ML2_CONF



@pytest.fixture
def write(tmp_path: Path):
    """write(text, name) -> absolute path of a new INI file holding ``text``."""
    counter = iter(range(1000))

    def _write(text: str, name: str | None = None) -> str:
        path = tmp_path / (name or f"conf{next(counter)}.ini")
        path.write_text(text, encoding="utf-8")
        return str(path)

    return _write


def config_error(paths: list[str], overrides: dict | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        load(paths, overrides=overrides)
    return str(info.value)


# ---------------------------------------------------------------- the issue's ml2_conf.ini


def test_issue_ml2_conf_loads_unchanged_with_typed_values(write):
    path = write(ML2_CONF, "ml2_conf.ini")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        settings = load([path])
    assert settings.ml2.type_drivers == ("flat", "vlan", "vxlan")
    assert settings.ml2.tenant_network_types == ("vxlan",)
    assert settings.ml2.mechanism_drivers == ("openvswitch", "l2population")
    assert settings.ml2.extension_drivers == ("port_security",)
    assert settings.ml2_type_flat.flat_networks == ("physnet1",)
    assert settings.ml2_type_vlan.network_vlan_ranges == ()
    assert settings.ml2_type_vxlan.vni_ranges == ((1, 1000),)
    assert settings.warnings == ()
    assert settings.config_files == (path,)


def test_issue_ml2_conf_leaves_other_sections_at_defaults(write):
    settings = load([write(ML2_CONF)])
    assert settings.DEFAULT == options.DefaultSection()
    assert settings.database == options.DatabaseSection()


def test_no_files_gives_defaults():
    settings = load([])
    assert settings == Settings()
    assert settings.DEFAULT.bind_host == "127.0.0.1"
    assert settings.DEFAULT.bind_port == 9696
    assert settings.DEFAULT.auth_strategy == "noauth"
    assert settings.DEFAULT.api_workers is None
    assert settings.DEFAULT.base_mac == "fa:16:3e:00:00:00"
    assert settings.ml2_type_flat.flat_networks == ("*",)


def test_unknown_sections_are_silent(write):
    settings = load([write("[keystone_authtoken]\nauth_url = http://x\n[oslo_concurrency]\nlock_path = /x\n")])
    assert settings.warnings == ()


def test_neutron_options_baryon_ignores_are_silent(write):
    settings = load([write("[DEFAULT]\ncore_plugin = ml2\ndebug = true\ntransport_url = rabbit://x\n"
                           "[database]\nmax_retries = 10\n")])
    assert settings.warnings == ()


def test_comments_and_blank_lines(write):
    settings = load([write("# a comment\n; another\n\n[DEFAULT]\n# bind_port = 1\nbind_port = 9797\n")])
    assert settings.DEFAULT.bind_port == 9797


# ---------------------------------------------------------------- several files


def test_later_files_override_option_by_option(write):
    first = write("[DEFAULT]\nbind_host = 0.0.0.0\nbind_port = 1111\n[ml2]\ntenant_network_types = vlan\n")
    second = write("[DEFAULT]\nbind_port = 2222\n[ml2_type_vlan]\nnetwork_vlan_ranges = physnet1:100:200\n")
    settings = load([first, second])
    assert settings.DEFAULT.bind_host == "0.0.0.0"  # only in the first
    assert settings.DEFAULT.bind_port == 2222  # overridden by the second
    assert settings.ml2.tenant_network_types == ("vlan",)
    assert settings.ml2_type_vlan.network_vlan_ranges == (VlanRange("physnet1", 100, 200),)
    assert settings.config_files == (first, second)
    # and the other way round
    assert load([second, first]).DEFAULT.bind_port == 1111


def test_neutron_conf_plus_ml2_conf(write):
    neutron = write("[DEFAULT]\ncore_plugin = ml2\nstate_path = /srv/baryon\n"
                    "[database]\nconnection = postgresql+psycopg://u:p@db/baryon\n")
    settings = load([neutron, write(ML2_CONF)])
    assert settings.database_url == "postgresql+psycopg://u:p@db/baryon"
    assert settings.DEFAULT.state_path == "/srv/baryon"
    assert settings.ml2_type_flat.flat_networks == ("physnet1",)
    assert settings.warnings == ()


def test_overrides_win_over_files(write):
    path = write("[ml2_type_vxlan]\nvni_ranges = 1:1000\n")
    settings = load([path], overrides={"ml2_type_vxlan": {"vni_ranges": "1:10"}})
    assert settings.ml2_type_vxlan.vni_ranges == ((1, 10),)


def test_invalid_override_names_override_source():
    message = config_error([], overrides={"DEFAULT": {"bind_port": "x"}})
    assert "<override>" in message and "[DEFAULT]" in message and "bind_port" in message


# ---------------------------------------------------------------- warnings


def test_unknown_option_in_known_section_is_a_warning(write):
    path = write("[ml2]\ntype_drivers = vxlan\nflavour = strawberry\n")
    settings = load([path])
    assert settings.ml2.type_drivers == ("vxlan",)
    assert len(settings.warnings) == 1
    warning = settings.warnings[0]
    assert path in warning and "[ml2]" in warning and "flavour" in warning


def test_one_warning_per_unknown_option(write):
    settings = load([write("[DEFAULT]\nfoo = 1\n[ml2_type_vxlan]\nbar = 2\n")])
    assert len(settings.warnings) == 2
    assert any("[DEFAULT]" in w and "foo" in w for w in settings.warnings)
    assert any("[ml2_type_vxlan]" in w and "bar" in w for w in settings.warnings)


def test_option_names_are_case_sensitive(write):
    settings = load([write("[DEFAULT]\nBind_Port = 1234\n")])
    assert settings.DEFAULT.bind_port == 9696
    assert len(settings.warnings) == 1 and "Bind_Port" in settings.warnings[0]


# ---------------------------------------------------------------- invalid values


@pytest.mark.parametrize(("section", "option", "value"), [
    ("DEFAULT", "bind_port", "abc"),
    ("DEFAULT", "bind_port", "70000"),
    ("DEFAULT", "bind_port", "-1"),
    ("DEFAULT", "base_mac", "zz:16:3e:00:00:00"),
    ("DEFAULT", "base_mac", "fa:16:3e:00:00"),
    ("DEFAULT", "base_mac", "01:16:3e:00:00:00"),  # multicast
    ("DEFAULT", "auth_strategy", "bogus"),
    ("DEFAULT", "api_workers", "-1"),
    ("DEFAULT", "api_workers", "many"),
    ("DEFAULT", "allow_overlapping_ips", "maybe"),
    ("DEFAULT", "bind_host", ""),
    ("ml2_type_vxlan", "vni_ranges", "5"),
    ("ml2_type_vxlan", "vni_ranges", "0:10"),
    ("ml2_type_vxlan", "vni_ranges", "1:16777216"),
    ("ml2_type_vxlan", "vni_ranges", "a:b"),
    ("ml2_type_vlan", "network_vlan_ranges", "physnet1:10"),
    ("ml2_type_vlan", "network_vlan_ranges", "physnet1:0:5"),
    ("ml2_type_vlan", "network_vlan_ranges", "physnet1:10:5"),
    ("ml2_type_vlan", "network_vlan_ranges", "physnet1:1:4095"),
    ("ml2_type_vlan", "network_vlan_ranges", ":1:10"),
    ("ml2_type_vlan", "network_vlan_ranges", "physnet1:a:b"),
    ("ml2", "type_drivers", "foo"),
    ("ml2", "tenant_network_types", "gre"),  # not in type_drivers
    ("ml2", "tenant_network_types", "bar"),
    ("ml2", "overlay_ip_version", "5"),
    ("ml2", "physical_network_mtus", "physnet1"),
    ("ml2", "physical_network_mtus", "physnet1:big"),
    ("ml2", "physical_network_mtus", ":1500"),
    ("ml2", "physical_network_mtus", "physnet1:\u00b2"),  # a digit int() refuses
    ("ml2", "path_mtu", "1.5"),
    ("database", "max_pool_size", "ten"),
])
def test_invalid_value_names_file_section_and_option(write, section, option, value):
    path = write(f"[{section}]\n{option} = {value}\n")
    message = config_error([path])
    assert path in message
    assert f"[{section}]" in message
    assert option in message


def test_tenant_type_must_be_a_loaded_type_driver(write):
    path = write("[ml2]\ntype_drivers = flat,vlan,vxlan,gre\n")
    # gre is a known type: a loaded but unsupported type driver is not an error...
    assert load([path]).ml2.type_drivers == ("flat", "vlan", "vxlan", "gre")
    # ... but asking project networks to use it is.
    message = config_error([path, write("[ml2]\ntenant_network_types = gre\n")])
    assert "tenant_network_types" in message and "gre" in message


def test_cross_option_error_names_the_file_the_option_came_from(write):
    types = write("[ml2]\ntype_drivers = flat,vlan\n")
    tenant = write("[ml2]\ntenant_network_types = vxlan\n")
    message = config_error([types, tenant])
    assert tenant in message and "[ml2] tenant_network_types" in message


def test_cross_option_error_with_default_value_says_default(write):
    # tenant_network_types keeps its default (vxlan), which the file's type_drivers lacks.
    message = config_error([write("[ml2]\ntype_drivers = flat\n")])
    assert "<default>" in message and "tenant_network_types" in message


def test_invalid_value_in_later_file_names_that_file(write):
    good = write("[DEFAULT]\nbind_port = 9000\n")
    bad = write("[DEFAULT]\nbind_port = nope\n")
    message = config_error([good, bad])
    assert bad in message and good not in message


def test_invalid_value_overridden_by_later_file_is_fine(write):
    bad = write("[DEFAULT]\nbind_port = nope\n")
    good = write("[DEFAULT]\nbind_port = 9000\n")
    assert load([bad, good]).DEFAULT.bind_port == 9000


def test_missing_file_is_a_config_error(tmp_path):
    missing = str(tmp_path / "nope.ini")
    message = config_error([missing])
    assert missing in message


def test_not_an_ini_file_is_a_config_error(write):
    path = write("this is not an ini file\n")
    assert path in config_error([path])


def test_file_not_in_utf8_is_a_config_error(tmp_path):
    path = tmp_path / "latin1.ini"
    path.write_bytes(b"[DEFAULT]\ndns_domain = caf\xe9\n")
    assert str(path) in config_error([str(path)])


# ---------------------------------------------------------------- value forms


@pytest.mark.parametrize(("raw", "expected"), [
    ("True", True), ("true", True), ("TRUE", True), ("yes", True), ("on", True), ("1", True),
    ("False", False), ("false", False), ("no", False), ("off", False), ("0", False),
])
def test_booleans_in_oslo_forms(write, raw, expected):
    settings = load([write(f"[DEFAULT]\nallow_overlapping_ips = {raw}\n")])
    assert settings.DEFAULT.allow_overlapping_ips is expected


def test_percent_is_not_interpolated(write):
    url = "mysql+pymysql://baryon:p%40ss%%word@127.0.0.1/baryon?charset=utf8"
    settings = load([write(f"[database]\nconnection = {url}\n")])
    assert settings.database.connection == url
    assert settings.database_url == url


def test_default_database_is_sqlite_under_state_path(write):
    assert load([]).database_url == "sqlite:////var/lib/baryon/baryon.sqlite"
    settings = load([write("[DEFAULT]\nstate_path = /tmp/state\n")])
    assert settings.database_url == "sqlite:////tmp/state/baryon.sqlite"


def test_empty_connection_means_default(write):
    settings = load([write("[DEFAULT]\nstate_path = /srv/b\n[database]\nconnection =\n")])
    assert settings.database_url == "sqlite:////srv/b/baryon.sqlite"


def test_lists_are_trimmed_and_empty_items_dropped(write):
    settings = load([write("[ml2]\nmechanism_drivers =  openvswitch , ,l2population,\n")])
    assert settings.ml2.mechanism_drivers == ("openvswitch", "l2population")


def test_empty_api_workers_means_per_cpu(write):
    assert load([write("[DEFAULT]\napi_workers =\n")]).DEFAULT.api_workers is None
    assert load([write("[DEFAULT]\napi_workers = 0\n")]).DEFAULT.api_workers == 0
    assert load([write("[DEFAULT]\napi_workers = 4\n")]).DEFAULT.api_workers == 4


def test_base_mac_is_lowercased(write):
    assert load([write("[DEFAULT]\nbase_mac = FA:16:3E:00:00:00\n")]).DEFAULT.base_mac == "fa:16:3e:00:00:00"


def test_bind_host_ipv6_and_name(write):
    assert load([write("[DEFAULT]\nbind_host = ::\n")]).DEFAULT.bind_host == "::"
    assert load([write("[DEFAULT]\nbind_host = localhost\n")]).DEFAULT.bind_host == "localhost"


def test_vlan_ranges_physnet_without_range(write):
    settings = load([write("[ml2_type_vlan]\nnetwork_vlan_ranges = physnet1,physnet2:100:199\n")])
    assert settings.ml2_type_vlan.network_vlan_ranges == (
        VlanRange("physnet1"), VlanRange("physnet2", 100, 199))


def test_reversed_vni_range_is_swapped_as_neutron_does():
    assert parse_tunnel_ranges("1000:1") == ((1, 1000),)


def test_flat_networks_star_and_empty(write):
    assert load([write("[ml2_type_flat]\nflat_networks = *\n")]).ml2_type_flat.flat_networks == ("*",)
    assert load([write("[ml2_type_flat]\nflat_networks =\n")]).ml2_type_flat.flat_networks == ()


# ---------------------------------------------------------------- properties of the range parsers

PHYSNET = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.", min_size=1,
                  max_size=20)
VLAN = st.integers(1, 4094)
VNI = st.integers(1, 2**24 - 1)


@st.composite
def vlan_range(draw) -> VlanRange:
    physnet = draw(PHYSNET)
    if draw(st.booleans()):
        return VlanRange(physnet)
    low, high = sorted((draw(VLAN), draw(VLAN)))
    return VlanRange(physnet, low, high)


def render_vlan(entry: VlanRange) -> str:
    if entry.minimum is None:
        return entry.physical_network
    return f"{entry.physical_network}:{entry.minimum}:{entry.maximum}"


@given(st.lists(vlan_range(), max_size=6), st.sampled_from([",", ", ", " , "]))
def test_vlan_ranges_round_trip(entries, separator):
    raw = separator.join(render_vlan(e) for e in entries)
    assert parse_vlan_ranges(raw) == tuple(entries)


@given(PHYSNET, VLAN, VLAN)
def test_vlan_range_bounds(physnet, a, b):
    raw = f"{physnet}:{a}:{b}"
    if a <= b:
        assert parse_vlan_ranges(raw) == (VlanRange(physnet, a, b),)
    else:
        with pytest.raises(ValueError):
            parse_vlan_ranges(raw)


@given(PHYSNET, st.integers(-10, 5000), st.integers(-10, 5000))
def test_vlan_range_outside_1_4094_refused(physnet, a, b):
    raw = f"{physnet}:{a}:{b}"
    if 1 <= a <= b <= 4094:
        assert parse_vlan_ranges(raw) == (VlanRange(physnet, a, b),)
    else:
        with pytest.raises(ValueError):
            parse_vlan_ranges(raw)


@given(st.lists(st.tuples(VNI, VNI), max_size=6), st.sampled_from([",", ", "]))
def test_tunnel_ranges_round_trip(pairs, separator):
    raw = separator.join(f"{a}:{b}" for a, b in pairs)
    assert parse_tunnel_ranges(raw) == tuple((min(a, b), max(a, b)) for a, b in pairs)


@given(st.integers(-5, 2**24 + 5), st.integers(-5, 2**24 + 5))
def test_tunnel_range_outside_vni_space_refused(a, b):
    low, high = min(a, b), max(a, b)
    if 1 <= low and high <= 2**24 - 1:
        assert parse_tunnel_ranges(f"{a}:{b}") == ((low, high),)
    else:
        with pytest.raises(ValueError):
            parse_tunnel_ranges(f"{a}:{b}")
