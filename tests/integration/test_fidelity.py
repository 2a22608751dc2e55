"""The Locus simulator speaks the whole reference: every base field of its component, site
and bulk examples, in their shapes (fields with fieldParameters, modelled fields without
aggregations), the PV model's parameters checked by the server (400) and by the client
before sending, prorated bulk fields, and physically consistent derived fields."""

from __future__ import annotations

from datetime import date, datetime

import attrs
import pytest

from locus_async import UsageError
from locus_async.errors import BadRequest
from locus_async.simulator import Simulator
from locus_async.simulator._fleet import Fleet, PartnerSpec, default_fleet
from tests import reference_examples as ex

pytestmark = pytest.mark.anyio

METER, INVERTER, SITE, PARTNER = 54369, 54370, 3393714, 111
START, END = datetime(2024, 6, 1), datetime(2024, 6, 3)
MODEL = {"modelType": "simple", "irradianceSource": "weatherStation", "inverterClipping": "true"}

#: Every base field of the reference's component, site and bulk dataavailable examples.
COMPONENT_FIELDS = {
    "A", "Hz", "PF", "PI_m", "PPV", "PhV", "VA", "VAR", "W", "W_m", "Wh", "Wh_m",
    "WphA", "WphB", "WphC",
}  # fmt: skip
SITE_FIELDS = {"W", "W_m", "Wh", "Wh_e", "Wh_m", "GHI_m", "GHIh_m"}
BULK_FIELDS = {"Wh", "Whp", "Wh_e", "GHIh_m", "GHIhp_m", "GHIh_t", "EER", "GEER"}


async def test_dataavailable_has_every_documented_field_in_the_documented_shape(
    sim: Simulator,
) -> None:
    """Meters and inverters together offer every field of the component example; modelled
    component fields come with fieldParameters and without aggregations, as in the docs,
    so ``base['aggregations'][0]`` fails here as it does on the real API."""
    async with sim.client(strict=True) as client:
        meter = await client.components.data_available(METER)
        inverter = await client.components.data_available(INVERTER)
        site = await client.sites.data_available(SITE)
        bulk = await client.partners.bulk_data_available(PARTNER)
    assert {b.base_field for b in [*meter, *inverter]} == COMPONENT_FIELDS
    assert {b.base_field for b in site} == SITE_FIELDS
    assert {b.base_field for b in bulk} == BULK_FIELDS
    (pi,) = [b for b in inverter if b.base_field == "PI_m"]
    assert pi.aggregations == ()
    assert [p.param for p in pi.field_parameters] == [
        "modelType",
        "irradianceSource",
        "inverterClipping",
    ]
    (w_m,) = [b for b in site if b.base_field == "W_m"]
    assert w_m.short_names == ("W_m_avg",)
    assert {p.param: p.values for p in w_m.field_parameters}["inverterClipping"] == (
        "true",
        "false",
    )
    documented = {b["baseField"]: b for b in ex.DATA_AVAILABLE["baseFields"]}
    for base in meter:
        if base.base_field in documented:
            assert base.short_names == tuple(
                a["shortName"] for a in documented[base.base_field].get("aggregations", [])
            )


async def test_every_offered_short_name_is_answered(sim: Simulator) -> None:
    """Each short name dataavailable lists is answered with values (model parameters
    given where the field takes them), for components, the site and bulk."""
    async with sim.client(strict=True) as client:
        for kind, ident in (("components", METER), ("components", INVERTER), ("sites", SITE)):
            api = client.components if kind == "components" else client.sites
            for base in await api.data_available(ident):
                if not base.short_names or "hourly" not in base.granularities:
                    continue
                series = await api.data(
                    ident,
                    fields=",".join(base.short_names),
                    start=START,
                    end=END,
                    tz="UTC",
                    gran="hourly",
                    field_params=MODEL if base.field_parameters else None,
                    validate=True,
                )
                for name in base.short_names:
                    assert any(v for v in series.column(name) if v), (kind, name)
        names = ",".join(f"{b}_{'avg' if b.endswith('EER') else 'sum'}" for b in BULK_FIELDS)
        bulk = await client.partners.bulk_data(
            PARTNER, fields=names, start=datetime(2024, 1, 1), end=datetime(2024, 7, 1), tz="UTC"
        )
    assert len(bulk) > 0


async def test_derived_fields_are_physically_consistent(sim: Simulator) -> None:
    """The three phases add up to the power bit for bit, VA >= W, the power factor is in
    (0, 1], and the line-to-line voltage is sqrt(3) times line to neutral."""
    async with sim.client(strict=True) as client:
        series = await client.components.data(
            METER,
            fields="W_avg,WphA_avg,WphB_avg,WphC_avg,VA_avg,PF_min,PF_max,PhV_avg,PPV_avg",
            start=START,
            end=END,
            tz="UTC",
            gran="1min",
        )
    rows = list(zip(*(series.column(n) for n in series.fields), strict=True))
    assert len(rows) == 2 * 1440
    for w, a, b, c, va, pf_min, pf_max, phv, ppv in rows:
        assert a + b + c == w
        assert va >= w
        assert 0 < pf_min <= pf_max <= 1
        assert ppv == pytest.approx(phv * 3**0.5, abs=0.04)
    assert max(r[0] for r in rows) > 0


async def test_field_parameters_are_checked_by_the_server_and_the_client(
    sim: Simulator,
) -> None:
    """Missing or wrong model parameters: the client refuses before sending (one line
    naming the parameter and its choices); sent anyway, the server answers 400."""
    async with sim.client(strict=True) as client:
        query = {"start": START, "end": END, "tz": "UTC", "gran": "hourly"}
        with pytest.raises(UsageError, match=r"needs the field parameter 'modelType'"):
            await client.sites.data(SITE, fields="W_m_avg", validate=True, **query)
        with pytest.raises(UsageError, match=r"inverterClipping='maybe'.*one of: true, false"):
            await client.sites.data(
                SITE,
                fields="W_m_avg",
                validate=True,
                field_params={**MODEL, "inverterClipping": "maybe"},
                **query,
            )
        with pytest.raises(UsageError, match=r"'inverterClipping' is taken by none"):
            await client.sites.data(
                SITE, fields="Wh_sum", validate=True, field_params=MODEL, **query
            )
        sent = sim.stats.requests
        with pytest.raises(BadRequest, match="Missing field parameter"):
            await client.sites.data(SITE, fields="W_m_avg", **query)
        with pytest.raises(BadRequest, match="Invalid value 'TMY3'"):
            await client.sites.data(
                SITE,
                fields="W_m_avg",
                field_params={**MODEL, "irradianceSource": "TMY3"},
                **query,
            )
        assert sim.stats.requests == sent + 2
        clipped = await client.sites.data(SITE, fields="W_m_avg", field_params=MODEL, **query)
        free = await client.sites.data(
            SITE, fields="W_m_avg", field_params={**MODEL, "inverterClipping": "false"}, **query
        )
    assert clipped.column("W_m_avg") != free.column("W_m_avg")
    assert all(
        c <= f for c, f in zip(clipped.column("W_m_avg"), free.column("W_m_avg"), strict=True)
    )
    truth = sim.ground_truth(
        "sites", SITE, fields=["W_m_avg"], start=START, end=END, tz="UTC", gran="hourly",
        field_params=MODEL,
    )  # fmt: skip
    assert [r["W_m_avg"] for r in truth] == clipped.column("W_m_avg")


def _fleet_with_startup(startup: date) -> Fleet:
    """The default fleet, its first site started up on ``startup`` (commissioned before)."""
    partners = []
    for partner in default_fleet().partners.values():
        clients = []
        for client in partner.clients:
            sites = tuple(
                attrs.evolve(s, startup=startup) if s.id == SITE else s for s in client.sites
            )
            clients.append(attrs.evolve(client, sites=sites))
        partners.append(PartnerSpec(partner.id, tuple(clients)))
    return Fleet(partners)


async def test_prorated_bulk_fields_start_at_the_startup_date() -> None:
    """Whp_sum counts energy from the startup date on (part of its month), Wh_sum all of
    it; before the startup month Whp_sum is null and Wh_sum is not."""
    sim = Simulator(fleet=_fleet_with_startup(date(2021, 7, 16)))
    rows = sim.ground_truth(
        "bulk",
        PARTNER,
        fields=["Wh_sum", "Whp_sum", "Wh_e_sum"],
        start=datetime(2021, 6, 1),
        end=datetime(2021, 9, 1),
        tz="UTC",
    )
    mine = {r["ts"].month: r for r in rows if r["id"] == SITE}
    assert mine[6]["Wh_sum"] > 0
    assert mine[6]["Whp_sum"] is None
    assert mine[6]["Wh_e_sum"] is None
    assert 0 < mine[7]["Whp_sum"] < mine[7]["Wh_sum"]
    assert mine[8]["Whp_sum"] == mine[8]["Wh_sum"]
    daily = sim.ground_truth(
        "sites", SITE, fields=["Wh_sum"], start=datetime(2021, 7, 16), end=datetime(2021, 8, 1),
        tz="UTC", gran="daily",
    )  # fmt: skip
    assert mine[7]["Whp_sum"] == sum(r["Wh_sum"] for r in daily)
