"""Example bodies from the Locus v3 reference (../shared/specs/locus-v3-api.txt), verbatim
in content, used by respx tests and the simulator's contract tests."""

from __future__ import annotations

from typing import Any

COMPONENT: dict[str, Any] = {
    "id": 54369,
    "siteId": 3393714,
    "clientId": 419010,
    "parentId": 3393714,
    "parentType": "SITE",
    "nodeId": "OB.001EC1111DC9.1",
    "name": "PV Meter",
    "nodeType": "METER",
    "application": "GENERATION",
    "generationType": "SOLAR",
    "oem": "Locus Energy",
    "model": "LGate 120",
    "isConceptualNode": False,
}

INVERTER: dict[str, Any] = {
    "id": 54369,
    "siteId": 3393714,
    "clientId": 419010,
    "parentId": 2050424,
    "parentType": "COMPONENT",
    "nodeId": "OB.TESTNODE.44",
    "name": "AE Inverter E1",
    "nodeType": "INVERTER",
    "application": "GENERATION",
    "generationType": "SOLAR",
    "oem": "Advanced Energy",
    "model": "AE 500NX 480V",
    "isConceptualNode": False,
}

GET_COMPONENT: dict[str, Any] = {"statusCode": 200, **COMPONENT}
COMPONENTS: dict[str, Any] = {"statusCode": 200, "components": [COMPONENT, INVERTER]}

SITE: dict[str, Any] = {
    "statusCode": 200,
    "id": 123,
    "clientId": 456,
    "name": "Test Site",
    "address1": "657 Mission St",
    "address2": "",
    "locale3": "San Francisco",
    "locale1": "California",
    "localeCode1": "CA",
    "postalCode": "94105",
    "countryCode": "US",
    "locationTimezone": "America/Los_Angeles",
}
SITE_2: dict[str, Any] = {
    "statusCode": 200,
    "id": 789,
    "clientId": 456,
    "name": "Test Site 2",
    "address1": "2 Hudson Place",
    "address2": "",
    "locale3": "Hoboken",
    "locale1": "New Jersey",
    "localeCode1": "NJ",
    "postalCode": "07030",
    "countryCode": "US",
    "locationTimezone": "America/New_York",
}
GET_SITE: dict[str, Any] = {**SITE, "locationTimezone": "America/Los_angeles"}
SITES: dict[str, Any] = {"statusCode": 200, "sites": [SITE, SITE_2]}

INSTALL_INFO: dict[str, Any] = {
    "statusCode": 200,
    "installer": "ABC Solar",
    "installDate": "2014-05-08",
    "ptoDate": "2014-05-14",
    "startupDate": "2014-05-14",
    "uninstallDate": "2014-06-01",
}

MODEL_SETTINGS: dict[str, Any] = {
    "statusCode": 200,
    "size": 1023.4,
    "mismatch": 98,
    "diodesAndConnections": 99,
    "dcWiring": 98,
    "soiling": 95,
    "sunTracking": 100,
    "nameplate": 100,
    "acWiring": 99,
    "transformer": 100,
    "tmy3Id": 724095,
}

CLIENT: dict[str, Any] = {
    "id": 123,
    "partnerId": 456,
    "tz": "US/Eastern",
    "firstName": "Test",
    "lastName": "System",
    "email": "test@aol.com",
}
GET_CLIENT: dict[str, Any] = {"statusCode": 200, **CLIENT}
CLIENTS: dict[str, Any] = {
    "statusCode": 200,
    "clients": [
        {**CLIENT, "email": "test@locusenergy.com"},
        {
            "id": 789,
            "partnerId": 456,
            "tz": "US/Pacific",
            "firstName": "Another",
            "lastName": "System",
            "email": "another@locusenergy.com",
        },
    ],
}

_GRANS = ["5min", "15min", "hourly", "daily", "monthly", "yearly"]
_PARAMS = [
    {"param": "modelType", "values": ["simple"]},
    {"param": "irradianceSource", "values": ["weatherStation"]},
    {"param": "inverterClipping", "values": ["true", "false"]},
]
DATA_AVAILABLE: dict[str, Any] = {
    "statusCode": 200,
    "baseFields": [
        {
            "baseField": "W",
            "longName": "AC Power",
            "source": "Measured",
            "unit": "W",
            "aggregations": [
                {"shortName": "W_avg", "aggregation": "avg"},
                {"shortName": "W_max", "aggregation": "max"},
                {"shortName": "W_min", "aggregation": "min"},
            ],
            "granularities": _GRANS,
        },
        {
            "baseField": "Wh",
            "longName": "AC Energy",
            "source": "Measured",
            "unit": "Wh",
            "aggregations": [{"shortName": "Wh_sum", "aggregation": "sum"}],
            "granularities": _GRANS,
        },
        {
            # As in the reference's component example: no aggregations key at all.
            "baseField": "W_m",
            "longName": "AC Power",
            "source": "Modeled",
            "unit": "W",
            "fieldParameters": _PARAMS,
            "granularities": ["1min", *_GRANS],
        },
        {
            "baseField": "Wh_m",
            "longName": "AC Energy",
            "source": "Modeled",
            "unit": "Wh",
            "aggregations": [{"shortName": "Wh_m_sum", "aggregation": "sum"}],
            "fieldParameters": _PARAMS,
            "granularities": ["1min", *_GRANS],
        },
    ],
}

BULK_DATA_AVAILABLE: dict[str, Any] = {
    "statusCode": 200,
    "baseFields": [
        {
            "baseField": "Wh",
            "longName": "AC Energy",
            "source": "Measured",
            "unit": "Wh",
            "aggregations": [{"shortName": "Wh_sum", "aggregation": "sum"}],
            "granularities": ["monthly"],
        },
        {
            "baseField": "EER",
            "longName": "Energy Expectations Ratio",
            "source": "Modeled",
            "unit": "",
            "aggregations": [{"shortName": "EER_avg", "aggregation": "avg"}],
            "granularities": ["monthly"],
        },
    ],
}

DATA_MONTHLY: dict[str, Any] = {
    "statusCode": 200,
    "data": [
        {"id": 54369, "ts": "2014-01-01T00:00:00-07:00", "Wh_sum": 1234.5, "W_avg": 567},
        {"id": 54369, "ts": "2014-02-01T00:00:00-07:00", "Wh_sum": 1252.4, "W_avg": 684.756},
    ],
}

DATA_HOURLY: dict[str, Any] = {
    "statusCode": 200,
    "data": [
        {"id": 123, "ts": "2014-04-01T12:00:00-07:00", "W_avg": 23.717, "Wh_sum": 5936},
        {"id": 123, "ts": "2014-04-01T13:00:00-07:00", "W_avg": 10.373, "Wh_sum": 2372},
    ],
}

DATA_LIFETIME: dict[str, Any] = {
    "statusCode": 200,
    "data": [
        {"id": 54369, "ts": "2000-01-01T00:00:00+00:00"},
        {"id": 54369, "ts": "2001-01-01T00:00:00+00:00"},
        {"id": 54369, "ts": "2014-01-01T00:00:00+00:00", "Wh_sum": 1234123.5},
        {"id": 54369, "ts": "2015-01-01T00:00:00+00:00", "Wh_sum": 124234.2},
        {"id": 54369, "ts": "2016-01-01T00:00:00+00:00"},
    ],
}

BULK_DATA: dict[str, Any] = {
    "statusCode": 200,
    "data": [
        {"id": 123, "ts": "2014-04-01T12:00:00-07:00", "Wh_sum": 5936},
        {"id": 123, "ts": "2014-05-01T13:00:00-07:00", "Wh_sum": 2372},
        {"id": 456, "ts": "2014-04-01T12:00:00-07:00", "Wh_sum": 21324},
        {"id": 456, "ts": "2014-05-01T13:00:00-07:00", "Wh_sum": 25234},
    ],
}

ALERTS: dict[str, Any] = {
    "statusCode": 200,
    "alerts": [
        {
            "id": 999,
            "componentId": 456,
            "componentName": "Test Inverter 1",
            "siteId": 99,
            "siteName": "Test Site",
            "alertType": "System Disconnect",
            "priority": "High",
            "start": "2015-11-01T12:00:00-00:00",
            "end": "2015-11-22T12:00:00-00:00",
            "updated": "2015-11-22T12:03:00-00:00",
        },
        {
            "id": 78,
            "componentId": 90,
            "componentName": "Test Inverter 2",
            "siteId": 99,
            "siteName": "Test Site",
            "alertType": "Device Fault",
            "priority": "Medium",
            "start": "2015-11-01T12:00:00-00:00",
            "end": "2015-11-22T15:00:00-00:00",
            "updated": "2015-11-24T12:05:00-00:00",
            "descriptionShort": "VDC high",
            "descriptionLong": "A voltage higher than 2100 V is present on the DC bus. (Resettable)",
        },
    ],
}

# The compression example: alerts without componentName/siteId/siteName (pre-2017 shape).
ALERTS_OLD_SHAPE: dict[str, Any] = {
    "statusCode": 200,
    "alerts": [
        {
            "id": 999,
            "componentId": 456,
            "alertType": "System Disconnect",
            "priority": "High",
            "start": "2015-11-01T12:00:00-00:00",
            "end": "2015-11-22T12:00:00-00:00",
            "updated": "2015-11-22T12:03:00-00:00",
        }
    ],
}

TOKEN_PASSWORD: dict[str, Any] = {
    "access_token": "41e818b29780637494d9026760d40b51",
    "issued_at": 1430347010,
    "token_type": "bearer",
    "refresh_token": "c27720f61b77245731c2e3ce4647ddad",
    "expires_in": 3600,
}
