"""The direct parallel floor: the department calls one subject needs, made at once, with no gateway.

Written from the departments' documents (../shared/departments/), not from our adapters, so
the floor does not inherit what it is held against: courts 失信 and 限制消费, each by the
USCC and by the 9-character organisation code (4 GETs); market's four batch POSTs for the
code; tax's two SOAP operations. Water is none: the gateway answers it from its own index.
The floor is the wall time until the slowest of the ten has answered in full.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Final

import aiohttp

from core.identity import org_code_of

COURTS_PATHS: Final = ("/shixin/search", "/xgl/search")
MARKET_PATHS: Final = (
    "/api/v1/entities/query",
    "/api/v1/abnormal/query",
    "/api/v1/illegal/query",
    "/api/v1/penalties/query",
)
TAX_PATH: Final = "/services/TaxCreditService"
TAX_OPERATIONS: Final = ("queryNsxy", "queryZdsswf")
# courts.md: pageSize at most 20; the gateway asks for full pages, and so does the floor.
PAGE_SIZE: Final = "20"
# The floor's calls come from this loopback address: the courts' 50 requests/s are counted
# per caller, and the gateway's calls (from 127.0.0.1) must not spend the floor's budget.
FLOOR_ADDRESS: Final = "127.0.0.2"
CALLS_PER_SUBJECT: Final = len(COURTS_PATHS) * 2 + len(MARKET_PATHS) + len(TAX_OPERATIONS)
COURTS_CALLS_PER_SUBJECT: Final = len(COURTS_PATHS) * 2


@dataclass(frozen=True, slots=True)
class FloorTime:
    """One subject's direct calls: wall time until the last answer, and whether all were 200."""

    ms: float
    ok: bool


def direct_session() -> aiohttp.ClientSession:
    """Used once per run: the floor's HTTP client, calling from FLOOR_ADDRESS."""
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=(FLOOR_ADDRESS, 0)))


async def floor(session: aiohttp.ClientSession, urls: dict[str, str], uscc: str) -> FloorTime:
    """Used for each isolated lookup: the ten calls of one subject, all in parallel."""
    calls = [
        _call(session, "GET", f"{urls['courts']}{path}", params=_courts(card))
        for path in COURTS_PATHS
        for card in (uscc, org_code_of(uscc))
    ]
    calls += [
        _call(session, "POST", f"{urls['market']}{path}", json={"uniscIds": [uscc]})
        for path in MARKET_PATHS
    ]
    calls += [
        _call(
            session,
            "POST",
            f"{urls['tax']}{TAX_PATH}",
            data=_soap(operation, uscc),
            headers={"Content-Type": "text/xml; charset=UTF-8", "SOAPAction": f'"{operation}"'},
        )
        for operation in TAX_OPERATIONS
    ]
    started = time.perf_counter()
    answers = await asyncio.gather(*calls)
    return FloorTime((time.perf_counter() - started) * 1000, all(answers))


def _courts(card_num: str) -> dict[str, str]:
    return {"cardNum": card_num, "page": "1", "pageSize": PAGE_SIZE}


def _soap(operation: str, uscc: str) -> bytes:
    # tax.md: SOAP 1.1, namespace urn:credit:tax:v1; UTF-8 is accepted when declared.
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
        'xmlns:tax="urn:credit:tax:v1"><soapenv:Body>'
        f"<tax:{operation}><tax:nsrsbhList><tax:nsrsbh>{uscc}</tax:nsrsbh></tax:nsrsbhList>"
        f"</tax:{operation}></soapenv:Body></soapenv:Envelope>"
    ).encode()


async def _call(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    params: dict[str, str] | None = None,
    json: object = None,
    data: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> bool:
    """One call read to its last byte, as the gateway must read it before it can answer."""
    try:
        async with session.request(
            method, url, params=params, json=json, data=data, headers=headers
        ) as response:
            await response.read()
            return response.status == 200
    except aiohttp.ClientError:
        return False
