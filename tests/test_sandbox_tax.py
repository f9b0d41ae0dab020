"""The sandbox tax server follows tax.md to the letter: SOAP 1.1, GBK, faults, through HTTP."""

from __future__ import annotations

from collections.abc import Sequence
from xml.etree.ElementTree import Element

import aiohttp
import defusedxml
import defusedxml.ElementTree as SafeET
import pytest

from sandbox.runner import SandboxServers
from tests.sandbox_support import (
    COMPANY_A,
    COMPANY_B,
    COMPANY_C,
    PERSON_1,
    Reply,
    fetch,
    make_uscc,
)

SOAP = "{http://schemas.xmlsoap.org/soap/envelope/}"
TAX = "{urn:credit:tax:v1}"


# Servers, session and the fault reset come from conftest.py.
pytestmark = pytest.mark.usefixtures("reset_sandbox_faults")


def envelope(
    operation: str, ids: Sequence[str], encoding: str = "UTF-8", prefix: str = "tax"
) -> bytes:
    """A request as tax.md shows it, in the declared encoding."""
    items = "".join(f"<{prefix}:nsrsbh>{i}</{prefix}:nsrsbh>" for i in ids)
    text = (
        f'<?xml version="1.0" encoding="{encoding}"?>\n'
        '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
        f'xmlns:{prefix}="urn:credit:tax:v1"><soapenv:Body><{prefix}:{operation}>'
        f"<{prefix}:nsrsbhList>{items}</{prefix}:nsrsbhList></{prefix}:{operation}>"
        "</soapenv:Body></soapenv:Envelope>"
    )
    return text.encode(encoding)


async def _call(
    servers: SandboxServers, session: aiohttp.ClientSession, operation: str, body: bytes
) -> Reply:
    headers = {"Content-Type": "text/xml; charset=UTF-8", "SOAPAction": f'"{operation}"'}
    url = servers.urls["tax"] + "/services/TaxCreditService"
    return await fetch(session, "POST", url, data=body, headers=headers)


def parse_gbk(body: bytes, forbid_dtd: bool = True) -> Element:
    """Parse a GBK answer as a client must: expat reads no GBK, so decode first."""
    declaration, _, rest = body.decode("gbk").partition("?>")
    assert declaration == '<?xml version="1.0" encoding="GBK"'
    return SafeET.fromstring(rest.strip().encode(), forbid_dtd=forbid_dtd)


def _return(reply: Reply, operation: str) -> Element:
    root = parse_gbk(reply.body)
    answer = root.find(f"{SOAP}Body/{TAX}{operation}Response/return")
    assert answer is not None
    return answer


async def test_answers_in_real_gbk(servers: SandboxServers, session: aiohttp.ClientSession) -> None:
    reply = await _call(servers, session, "queryNsxy", envelope("queryNsxy", [COMPANY_A]))
    assert reply.status == 200
    assert reply.headers["Content-Type"] == "text/xml; charset=GBK"
    assert reply.body.startswith(b'<?xml version="1.0" encoding="GBK"?>')
    assert "榆林市宏达建设有限公司".encode("gbk") in reply.body
    assert "榆林市宏达建设有限公司".encode() not in reply.body
    answer = _return(reply, "queryNsxy")
    assert (answer.findtext("fhdm"), answer.findtext("fhxx")) == ("0", "成功")


async def test_ratings_several_years_in_a_stable_shuffled_order(
    servers: SandboxServers, session: aiohttp.ClientSession
) -> None:
    body = envelope("queryNsxy", [COMPANY_A, COMPANY_B, COMPANY_C])
    first = await _call(servers, session, "queryNsxy", body)
    again = await _call(servers, session, "queryNsxy", body)
    assert first.body == again.body
    rows = _return(first, "queryNsxy").findall("nsxyList/nsxy")
    years = [(r.findtext("nsrsbh"), int(r.findtext("pjnd") or 0)) for r in rows]
    assert sorted(years) == sorted(
        [(COMPANY_A, y) for y in range(2021, 2026)] + [(COMPANY_B, 2024), (COMPANY_B, 2025)]
    )
    a_years = [y for code, y in years if code == COMPANY_A]
    assert a_years not in (sorted(a_years), sorted(a_years, reverse=True))
    assert COMPANY_C not in {code for code, _ in years}  # no rating: simply absent
    latest = next(
        r for r in rows if r.findtext("pjnd") == "2025" and r.findtext("nsrsbh") == COMPANY_A
    )
    assert (latest.findtext("xydj"), latest.findtext("pjrq")) == ("A", "2026-04-15")


@pytest.mark.parametrize("encoding", ["UTF-8", "GBK"])
async def test_requests_in_utf8_and_gbk_are_accepted(
    servers: SandboxServers, session: aiohttp.ClientSession, encoding: str
) -> None:
    reply = await _call(
        servers, session, "queryZdsswf", envelope("queryZdsswf", [COMPANY_A], encoding)
    )
    assert reply.status == 200
    assert len(_return(reply, "queryZdsswf").findall("ajList/aj")) == 2


async def test_gbk_bytes_declared_utf8_are_a_client_fault(
    servers: SandboxServers, session: aiohttp.ClientSession
) -> None:
    body = envelope("queryNsxy", ["榆林"], "GBK").replace(b'encoding="GBK"', b'encoding="UTF-8"')
    reply = await _call(servers, session, "queryNsxy", body)
    assert reply.status == 500
    assert parse_gbk(reply.body).findtext(f"{SOAP}Body/{SOAP}Fault/faultcode") == "soapenv:Client"


async def test_any_prefix_for_the_service_namespace(
    servers: SandboxServers, session: aiohttp.ClientSession
) -> None:
    reply = await _call(
        servers, session, "queryNsxy", envelope("queryNsxy", [COMPANY_B], prefix="ns9")
    )
    assert len(_return(reply, "queryNsxy").findall("nsxyList/nsxy")) == 2


async def test_case_fields_masking_and_empty_tcrq(
    servers: SandboxServers, session: aiohttp.ClientSession
) -> None:
    reply = await _call(servers, session, "queryZdsswf", envelope("queryZdsswf", [COMPANY_A]))
    stopped, published = _return(reply, "queryZdsswf").findall("ajList/aj")
    assert [c.tag for c in published] == [
        "ajbh", "nsrsbh", "nsrmc", "zcdz", "fddbrxm", "fddbrzjhm", "cwfzrxm", "ajxz", "zywfss",
        "xgfljcl", "rdjg", "rdrq", "gbrq", "tcrq",
    ]  # fmt: skip
    assert published.findtext("fddbrzjhm") == PERSON_1[:6] + "********" + PERSON_1[-4:]
    tcrq = published.find("tcrq")
    assert tcrq is not None and tcrq.text is None and len(tcrq) == 0  # an empty element
    assert b"<tcrq/>" in reply.body
    assert (published.findtext("gbrq"), stopped.findtext("tcrq")) == ("2024-07-01", "2022-01-05")


async def test_more_than_50_ids_is_a_soap_fault(
    servers: SandboxServers, session: aiohttp.ClientSession
) -> None:
    ids = [make_uscc("610802", f"MA9{n:04d}K") for n in range(51)]
    reply = await _call(servers, session, "queryNsxy", envelope("queryNsxy", ids))
    assert reply.status == 500
    assert reply.headers["Content-Type"] == "text/xml; charset=GBK"
    fault = parse_gbk(reply.body).find(f"{SOAP}Body/{SOAP}Fault")
    assert fault is not None
    assert (fault.findtext("faultcode"), fault.findtext("faultstring")) == (
        "soapenv:Client",
        "参数超限",
    )
    fifty = await _call(servers, session, "queryNsxy", envelope("queryNsxy", ids[:50]))
    assert fifty.status == 200


@pytest.mark.parametrize(
    "body",
    [
        b"<not xml",
        b'<?xml version="1.0"?><Envelope/>',
        envelope("queryEverything", [COMPANY_A]),
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>',
    ],
)
async def test_malformed_requests_are_soap_faults(
    servers: SandboxServers, session: aiohttp.ClientSession, body: bytes
) -> None:
    reply = await _call(servers, session, "queryNsxy", body)
    assert reply.status == 500
    root = parse_gbk(reply.body)
    assert root.findtext(f"{SOAP}Body/{SOAP}Fault/faultcode") == "soapenv:Client"


async def test_fhdm_knob_reports_busy_inside_http_200(
    servers: SandboxServers, session: aiohttp.ClientSession
) -> None:
    servers.faults["tax"].update({"fhdm_error_rate": 1.0})
    reply = await _call(servers, session, "queryNsxy", envelope("queryNsxy", [COMPANY_A]))
    assert reply.status == 200
    answer = _return(reply, "queryNsxy")
    assert (answer.findtext("fhdm"), answer.findtext("fhxx")) == ("2001", "系统繁忙")
    assert answer.find("nsxyList") is None


async def test_dtd_knob_sends_a_payload_a_safe_parser_refuses(
    servers: SandboxServers, session: aiohttp.ClientSession
) -> None:
    servers.faults["tax"].update({"dtd": True})
    reply = await _call(servers, session, "queryNsxy", envelope("queryNsxy", [COMPANY_A]))
    assert reply.status == 200
    assert b"<!DOCTYPE" in reply.body and b"<!ENTITY lol9" in reply.body
    with pytest.raises(defusedxml.DTDForbidden):
        parse_gbk(reply.body)
    with pytest.raises(defusedxml.EntitiesForbidden):
        parse_gbk(reply.body, forbid_dtd=False)


async def test_maintenance_is_an_html_503(
    servers: SandboxServers, session: aiohttp.ClientSession
) -> None:
    servers.faults["tax"].update({"down": True})
    reply = await _call(servers, session, "queryNsxy", envelope("queryNsxy", [COMPANY_A]))
    assert reply.status == 503
    assert reply.headers["Content-Type"].startswith("text/html")
