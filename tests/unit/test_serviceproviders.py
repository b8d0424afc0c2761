"""The service providers a server offers (service-type) and how flavors find them: pure lookups."""

from baryon.service import serviceproviders as sp

SINGLE_NODE = "neutron.services.l3_router.service_providers.single_node.SingleNodeDriver"
DVR = "neutron.services.l3_router.service_providers.dvr.DvrDriver"


def test_the_l3_provider_is_the_legacy_router_by_default():
    assert [sp.body(p) for p in sp.providers()] == [{"service_type": sp.L3, "name": "single_node", "default": True}]
    assert sp.provider_of(sp.L3, SINGLE_NODE).name == "single_node"


def test_filters_match_any_of_their_values_and_all_filters():
    assert sp.providers({"service_type": ["VPN", sp.L3], "default": [True]}) == list(sp.PROVIDERS)
    assert sp.providers({"service_type": [sp.L3], "name": ["dvr"]}) == []
    assert sp.providers({"default": [False]}) == []


def test_drivers_baryon_cannot_honour_are_unknown():
    assert sp.known_driver(SINGLE_NODE) and not sp.known_driver(DVR) and not sp.known_driver("")
    assert sp.provider_of("FLAVORS", SINGLE_NODE) is None
    assert {sp.CORE, sp.L3, sp.FLAVORS} == sp.SERVICE_TYPES
