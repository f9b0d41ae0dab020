"""Sandbox 税务 tax server (tax.md): SOAP 1.1 accepted in GBK or UTF-8, answered in GBK."""

from __future__ import annotations

import codecs
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final
from xml.etree.ElementTree import Element, ParseError
from xml.sax.saxutils import escape

import defusedxml
import defusedxml.ElementTree as SafeET
from aiohttp import web

from sandbox.faults import FAULTS_KEY, FaultResponses, FaultState, department_app, html_page
from sandbox.model import Dataset, TaxCase, TaxRatingRow

SERVICE_PATH: Final = "/services/TaxCreditService"
TAX_NS: Final = "urn:credit:tax:v1"
SOAP_NS: Final = "http://schemas.xmlsoap.org/soap/envelope/"
MAX_IDS: Final = 50  # tax.md: "at most 50 ids"; more is a SOAP Fault 参数超限
OPERATIONS: Final = ("queryNsxy", "queryZdsswf")
_LIST_OF: Final = {"queryNsxy": "nsxyList", "queryZdsswf": "ajList"}
# tax.md: requests come in GBK or UTF-8, "if the declaration says which".
_CODECS: Final = {"utf-8": "utf-8", "utf8": "utf-8", "gbk": "gbk", "gb2312": "gbk", "cp936": "gbk"}
_DECLARATION: Final = re.compile(rb"<\?xml\s[^>]*\?>")
_ENCODING: Final = re.compile(rb"""encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")
_XML_DECL: Final = '<?xml version="1.0" encoding="GBK"?>\n'
_ENVELOPE_OPEN: Final = f'<soapenv:Envelope xmlns:soapenv="{SOAP_NS}"><soapenv:Body>'
_ENVELOPE_CLOSE: Final = "</soapenv:Body></soapenv:Envelope>"
# The `dtd` knob: a "billion laughs" entity expansion that a safe parser must refuse.
_LAUGHS: Final = "".join(f'  <!ENTITY lol{n} "{f"&lol{n - 1};" * 10}">\n' for n in range(1, 10))
_HOSTILE_DOCTYPE: Final = f'<!DOCTYPE soapenv:Envelope [\n  <!ENTITY lol0 "lol">\n{_LAUGHS}]>\n'


class ClientFault(Exception):
    """A request the service refuses with an HTTP 500 SOAP Fault (faultcode soapenv:Client)."""


@dataclass(slots=True)
class TaxIndex:
    """Ratings and cases keyed by nsrsbh; rendered per answer (at most 50 taxpayers)."""

    ratings: dict[str, list[TaxRatingRow]]
    cases: dict[str, list[TaxCase]]

    @classmethod
    def build(cls, dataset: Dataset) -> TaxIndex:
        """Used once per dataset version: at create_app and on replace_dataset."""
        ratings: dict[str, list[TaxRatingRow]] = {}
        for row in dataset.tax_ratings:
            ratings.setdefault(row.nsrsbh, []).append(row)
        cases: dict[str, list[TaxCase]] = {}
        for case in sorted(dataset.tax_cases, key=lambda c: (c.gbrq, c.ajbh)):
            cases.setdefault(case.nsrsbh, []).append(case)
        return cls(ratings=ratings, cases=cases)

    def answer_items(self, operation: str, ids: Iterable[str]) -> str:
        """The list content for one operation; taxpayers without data are simply absent."""
        if operation == "queryZdsswf":
            return "".join(_aj(case) for i in ids for case in self.cases.get(i, ()))
        rows = (row for i in ids for row in self.ratings.get(i, ()))
        # tax.md: "several years may be returned, any order" — a stable shuffle, not by year.
        return "".join(_nsxy(row) for row in sorted(rows, key=_shuffle_key))


@dataclass(slots=True)
class _Current:
    index: TaxIndex


_INDEX_KEY: Final = web.AppKey("tax_index", _Current)


def create_app(dataset: Dataset, faults: FaultState) -> web.Application:
    """Used by the runner to serve the tax department for one dataset."""
    app = department_app(faults, _RESPONSES)
    app[_INDEX_KEY] = _Current(TaxIndex.build(dataset))
    app.router.add_post(SERVICE_PATH, _service)
    return app


def replace_dataset(app: web.Application, dataset: Dataset) -> None:
    """Used by the runner when a new dataset version is published."""
    app[_INDEX_KEY].index = TaxIndex.build(dataset)


def mask_id_number(number: str) -> str:
    """tax.md: birth-date digits masked, 610802********0021."""
    return number[:6] + "*" * 8 + number[-4:] if number else ""


# --- rendering ----------------------------------------------------------------------------


def _el(name: str, value: str) -> str:
    return f"<{name}>{escape(value)}</{name}>" if value else f"<{name}/>"


def _shuffle_key(row: TaxRatingRow) -> str:
    return hashlib.sha256(f"{row.nsrsbh}|{row.pjnd}".encode()).hexdigest()


def _nsxy(row: TaxRatingRow) -> str:
    return (
        f"<nsxy>{_el('nsrsbh', row.nsrsbh)}{_el('nsrmc', row.nsrmc)}{_el('pjnd', str(row.pjnd))}"
        f"{_el('xydj', row.xydj)}{_el('pjrq', row.pjrq.isoformat())}</nsxy>"
    )


def _aj(case: TaxCase) -> str:
    fields = (
        ("ajbh", case.ajbh),
        ("nsrsbh", case.nsrsbh),
        ("nsrmc", case.nsrmc),
        ("zcdz", case.zcdz),
        ("fddbrxm", case.fddbrxm),
        ("fddbrzjhm", mask_id_number(case.fddbrzjhm)),
        ("cwfzrxm", case.cwfzrxm),
        ("ajxz", case.ajxz),
        ("zywfss", case.zywfss),
        ("xgfljcl", case.xgfljcl),
        ("rdjg", case.rdjg),
        ("rdrq", case.rdrq.isoformat()),
        ("gbrq", case.gbrq.isoformat()),
        ("tcrq", case.tcrq.isoformat() if case.tcrq else ""),  # empty element while published
    )
    return "<aj>" + "".join(_el(name, value) for name, value in fields) + "</aj>"


def _soap_response(inner: str, status: int = 200, doctype: str = "") -> web.Response:
    # tax.md: answers are GBK, in the header and in the declaration; characters outside GBK
    # become character references so the bytes stay valid GBK.
    text = _XML_DECL + doctype + _ENVELOPE_OPEN + inner + _ENVELOPE_CLOSE
    return web.Response(
        body=text.encode("gbk", "xmlcharrefreplace"),
        status=status,
        content_type="text/xml",
        charset="GBK",
    )


def _operation_response(operation: str, fhdm: str, fhxx_xml: str, items: str | None) -> str:
    """`fhxx_xml` is XML text already (the dtd knob puts an entity reference there)."""
    name = _LIST_OF[operation]
    listing = "" if items is None else f"<{name}>{items}</{name}>" if items else f"<{name}/>"
    return (
        f'<ns2:{operation}Response xmlns:ns2="{TAX_NS}"><return>{_el("fhdm", fhdm)}'
        f"<fhxx>{fhxx_xml}</fhxx>{listing}</return></ns2:{operation}Response>"
    )


def soap_fault(message: str) -> web.Response:
    """tax.md "Faults": HTTP 500, faultcode soapenv:Client."""
    inner = (
        "<soapenv:Fault><faultcode>soapenv:Client</faultcode>"
        f"{_el('faultstring', message)}</soapenv:Fault>"
    )
    return _soap_response(inner, status=500)


# --- request parsing ----------------------------------------------------------------------


def decode_request(body: bytes) -> str:
    """The request text without its declaration, decoded as the declaration says."""
    if body.startswith(codecs.BOM_UTF8):
        body = body[len(codecs.BOM_UTF8) :]
    declaration = _DECLARATION.match(body)
    encoding = "utf-8"  # XML's default when the declaration names none
    if declaration is not None:
        named = _ENCODING.search(declaration.group())
        encoding = named.group(1).decode("ascii").lower() if named else encoding
    codec = _CODECS.get(encoding)
    if codec is None:
        raise ClientFault(f"不支持的字符编码：{encoding}")
    try:
        return body[declaration.end() if declaration else 0 :].decode(codec)
    except UnicodeDecodeError:
        raise ClientFault(f"报文内容不是合法的{encoding.upper()}编码") from None


def parse_request(body: bytes) -> tuple[str, list[str]]:
    """Operation (from the Body element, any prefix) and the distinct nsrsbh in order."""
    text = decode_request(body)
    try:
        # The declaration is gone (expat cannot read GBK), so expat sees UTF-8 bytes.
        root = SafeET.fromstring(text.encode("utf-8"), forbid_dtd=True)
    except (ParseError, defusedxml.DefusedXmlException) as exc:
        raise ClientFault(f"报文解析错误：{exc}") from None
    operation = _operation_element(root)
    id_list = operation.find(f"{{{TAX_NS}}}nsrsbhList")
    if id_list is None:
        raise ClientFault("参数错误：缺少nsrsbhList")
    ids = [(e.text or "").strip() for e in id_list.findall(f"{{{TAX_NS}}}nsrsbh")]
    if len(ids) > MAX_IDS:
        raise ClientFault("参数超限")
    if not all(ids):
        raise ClientFault("参数错误：nsrsbh不能为空")
    return operation.tag.removeprefix(f"{{{TAX_NS}}}"), list(dict.fromkeys(ids))


def _operation_element(root: Element) -> Element:
    if root.tag != f"{{{SOAP_NS}}}Envelope":
        raise ClientFault("报文不是SOAP 1.1 Envelope")
    body = root.find(f"{{{SOAP_NS}}}Body")
    operation = next(iter(body), None) if body is not None else None
    if operation is None:
        raise ClientFault("报文缺少soapenv:Body或操作元素")
    if operation.tag not in {f"{{{TAX_NS}}}{name}" for name in OPERATIONS}:
        raise ClientFault(f"未知的操作：{operation.tag}")
    return operation


# --- handler and failure answers ----------------------------------------------------------


async def _service(request: web.Request) -> web.Response:
    # The operation is taken from the Body element; SOAPAction is accepted as given.
    try:
        operation, ids = parse_request(await request.read())
    except ClientFault as fault:
        return soap_fault(str(fault))
    faults = request.app[FAULTS_KEY]
    # Both operations share one URL: count each by name too, so calls per operation show.
    faults.requests[f"SOAP {operation}"] += 1
    if faults.chance(faults.fhdm_error_rate):
        # tax.md: an error reported inside an HTTP 200 body.
        return _soap_response(_operation_response(operation, "2001", "系统繁忙", None))
    items = request.app[_INDEX_KEY].index.answer_items(operation, ids)
    if faults.dtd:
        inner = _operation_response(operation, "0", "&lol9;", items)
        return _soap_response(inner, doctype=_HOSTILE_DOCTYPE)
    return _soap_response(_operation_response(operation, "0", "成功", items))


def _garbage() -> web.Response:
    # 200 and the announced content type, but a portal page instead of a SOAP envelope.
    body = "<html><body><h1>服务暂时不可用</h1></body></html>".encode("gbk")
    return web.Response(body=body, content_type="text/xml", charset="GBK")


_RESPONSES: Final = FaultResponses(
    maintenance=lambda: html_page(503, "系统维护", "纳税信用信息服务正在维护"),
    failure=lambda status: html_page(status, "服务异常", "纳税信用信息服务内部错误"),
    throttled=lambda status: html_page(status, "请求过于频繁", "请稍后重试"),
    garbage=_garbage,
)
