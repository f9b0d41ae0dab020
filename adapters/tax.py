"""税务 纳税信用信息服务 (departments/tax.md): SOAP 1.1, answered in GBK, 50 ids a call."""

from __future__ import annotations

import codecs
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from xml.etree.ElementTree import Element, ParseError
from xml.sax.saxutils import escape

import defusedxml
import defusedxml.ElementTree as SafeET

from adapters.base import Adapter, AdapterDeps, Parts, SubjectResult, asked_parts
from adapters.dates import parse_iso
from adapters.http import HTTP_OPTIONS, HttpAnswer, PayloadError, SourceHttp, gather_strict
from core.masking import mask_given_id
from core.records import CreditRecord, Department, Part, RecordKind, SubjectFacts, TaxRating
from core.sources import FailureKind, SourceError, SourceHealth

SERVICE_PATH = "/services/TaxCreditService"
SOAP_NS = "http://schemas.xmlsoap.org/soap/envelope/"
TAX_NS = "urn:credit:tax:v1"
RATINGS_OP = "queryNsxy"
CASES_OP = "queryZdsswf"
# tax.md: "at most 50 ids"; more is answered with a SOAP Fault 参数超限.
BATCH_SIZE = 50
# tax.md: fhdm 2001 系统繁忙 is a transient failure; every other non-zero code is not.
BUSY_FHDM = "2001"
GRADES = frozenset({"A", "B", "M", "C", "D"})
PROBE_CODE = "91610800MA703XY29Q"
# One operation per part.
OPERATIONS: dict[Part, str] = {Part.TAX_GRADES: RATINGS_OP, Part.TAX_VIOLATIONS: CASES_OP}
_DECLARED = re.compile(rb"""^\s*<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")
_SHORT_CODE = re.compile(r"[0-9A-Za-z]{1,10}")
# WHATWG Encoding: the labels gbk and gb2312 are decoded by the GB18030 decoder, which
# also reads the four-byte sequences some "GBK" systems emit for rare characters in names.
_DECODERS = {"gbk": "gb18030", "gb2312": "gb18030", "cp936": "gb18030", "x-gbk": "gb18030"}


class TaxAdapter(Adapter):
    """Used for subject lookups: tax ratings by year and major tax violation cases."""

    department = Department.TAX
    option_types = HTTP_OPTIONS
    # tax.md publishes no capacity; its SOAP calls carry 50 codes and are the slowest to
    # parse, so fewer in flight than market.
    default_max_concurrency = 16
    max_batch = BATCH_SIZE

    def __init__(self, deps: AdapterDeps) -> None:
        super().__init__(deps)
        self._http = SourceHttp(deps, Department.TAX)

    async def lookup_subjects(
        self, usccs: Sequence[str], parts: Parts = None
    ) -> Mapping[str, SubjectResult]:
        """Facts per USCC: the operations asked for (both by default), one call each per 50."""
        asked = asked_parts(self.department, parts)
        wanted = [part for part in OPERATIONS if part in asked]

        async def chunk(codes: list[str]) -> dict[str, SubjectResult]:
            return await self._chunk(codes, wanted)

        return await self._http.in_chunks(usccs, BATCH_SIZE, chunk)

    async def health(self) -> SourceHealth:
        """One rating query of a valid code."""
        return await self._http.probe(self._call(RATINGS_OP, [PROBE_CODE]))

    async def _chunk(self, codes: list[str], parts: list[Part]) -> dict[str, SubjectResult]:
        """Facts on at most 50 codes: the operations asked for, concurrently."""
        # All operations asked or none: ratings without the cases could read as clean. The
        # facts name the parts they cover, so ratings asked alone never read as "no case".
        answers = await gather_strict(*(self._call(OPERATIONS[part], codes) for part in parts))
        lists = dict(zip(parts, answers, strict=True))
        ratings_list = lists.get(Part.TAX_GRADES)
        cases_list = lists.get(Part.TAX_VIOLATIONS)
        now = self.deps.clock.now()
        wanted = set(codes)
        bad: dict[str, SourceError] = {}
        ratings: dict[str, list[tuple[TaxRating, str | None]]] = {}
        for item in _children(ratings_list, "nsxy") if ratings_list is not None else []:
            code = _required(item, "nsrsbh")
            if code in wanted:
                try:
                    ratings.setdefault(code, []).append(_rating(item))
                except PayloadError as exc:
                    bad[code] = _bad(exc)
        cases: dict[str, list[tuple[CreditRecord, str | None]]] = {}
        for item in _children(cases_list, "aj") if cases_list is not None else []:
            code = _required(item, "nsrsbh")
            if code in wanted:
                try:
                    cases.setdefault(code, []).append(_case(item))
                except PayloadError as exc:
                    bad[code] = _bad(exc)
        covered = frozenset(parts)
        # One malformed entry costs its own code, not the other 49 of the chunk.
        return {code: bad.get(code) or _facts(code, now, ratings, cases, covered) for code in codes}

    async def _call(self, operation: str, codes: list[str]) -> Element | None:
        """The operation's list element (nsxyList / ajList), None when the answer has none."""
        answer = await self._http.request(
            "POST",
            SERVICE_PATH,
            data=_request(operation, codes),
            headers={
                "Content-Type": "text/xml; charset=UTF-8",
                # SOAP 1.1: the SOAPAction header value is a quoted URI.
                "SOAPAction": f'"{operation}"',
            },
            # tax.md "Faults": a refused request is HTTP 500 with a SOAP Fault to read; it is
            # read per attempt, so a failing service (HTML 500, Server fault) is retried.
            accept=frozenset({200, 500}),
            failure_of=_failure_of,
        )
        body = _soap_body(_parse(answer))
        content = _first_child(body)
        if content is None:
            raise PayloadError("SOAP Body is empty")
        if _local(content.tag) == "Fault":
            raise _fault_error(content)
        if _local(content.tag) != f"{operation}Response":
            raise PayloadError("answer is not for the operation asked")
        ret = _child(content, "return")
        if ret is None:
            raise PayloadError("answer has no return element")
        fhdm = _text(ret, "fhdm")
        if fhdm != "0":
            # tax.md: errors come inside an HTTP 200 body; fhdm 2001 系统繁忙 is transient.
            kind = FailureKind.UNAVAILABLE if fhdm == BUSY_FHDM else FailureKind.BAD_PAYLOAD
            shown = fhdm if fhdm and _SHORT_CODE.fullmatch(fhdm) else "missing"
            raise SourceError(Department.TAX, kind, f"tax answered fhdm {shown}")
        return _child(ret, "nsxyList" if operation == RATINGS_OP else "ajList")


def _request(operation: str, codes: list[str]) -> bytes:
    """The SOAP request of one operation for at most 50 codes."""
    ids = "".join(f"<tax:nsrsbh>{escape(code)}</tax:nsrsbh>" for code in codes)
    text = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<soapenv:Envelope xmlns:soapenv="{SOAP_NS}" xmlns:tax="{TAX_NS}">'
        f"<soapenv:Body><tax:{operation}><tax:nsrsbhList>{ids}</tax:nsrsbhList>"
        f"</tax:{operation}></soapenv:Body></soapenv:Envelope>"
    )
    # tax.md: requests may be UTF-8 "if the declaration says which"; it does, above.
    return text.encode("utf-8")


def _decode(answer: HttpAnswer) -> str:
    """The answer as text, in the charset the header or the XML declaration names."""
    # tax.md: the service answers in GBK (header and declaration); never assume UTF-8.
    declared = _DECLARED.match(answer.body)
    label = answer.charset or (declared.group(1).decode("ascii") if declared else "utf-8")
    label = label.strip().lower()
    try:
        codec = codecs.lookup(_DECODERS.get(label, label)).name
    except LookupError:
        raise PayloadError("answer names an unknown charset") from None
    if codec == "utf-8":
        codec = "utf-8-sig"
    try:
        return answer.body.decode(codec)
    except UnicodeDecodeError:
        raise PayloadError("answer is not in the charset it names") from None


def _parse(answer: HttpAnswer) -> Element:
    """The answer's root element, parsed safely; DTDs and malformed XML are PayloadError."""
    text = _decode(answer)
    try:
        # A str is parsed as the text it is (expat cannot read GBK bytes itself). DTDs are
        # refused: tax.md says the service never sends one, and an entity bomb must not
        # expand inside the gateway.
        return SafeET.fromstring(text, forbid_dtd=True)
    except defusedxml.DefusedXmlException:
        raise PayloadError("answer carries a DTD or entities") from None
    except ParseError:
        raise PayloadError("answer is not well-formed XML") from None


def _soap_body(root: Element) -> Element:
    if _local(root.tag) != "Envelope":
        raise PayloadError("answer is not a SOAP envelope")
    body = _child(root, "Body")
    if body is None:
        raise PayloadError("SOAP envelope has no Body")
    return body


def _failure_of(answer: HttpAnswer) -> SourceError | None:
    """The failure an accepted answer stands for: None for a 200, the 500's reading else."""
    return _fault_of_500(answer) if answer.status == 500 else None


def _fault_of_500(answer: HttpAnswer) -> SourceError:
    """The SourceError an HTTP 500 stands for: its SOAP Fault, or a failing service."""
    # A 500 is a SOAP Fault when its body is one; otherwise (an HTML error page, which
    # carries a DOCTYPE) it is an internal failure of the service.
    try:
        content = _first_child(_soap_body(_parse(answer)))
    except PayloadError:
        content = None
    if content is None or _local(content.tag) != "Fault":
        return SourceError(Department.TAX, FailureKind.UNAVAILABLE, "HTTP 500")
    return _fault_error(content)


def _fault_error(fault: Element) -> SourceError:
    """The SourceError a SOAP Fault stands for."""
    # SOAP 1.1 §4.4.1: faultcode Client means our request was refused (it will be again);
    # Server means the service failed and a later call may succeed.
    code = _text(fault, "faultcode") or ""
    local = code.rsplit(":", 1)[-1]
    if local == "Server" or local.startswith("Server."):
        return SourceError(Department.TAX, FailureKind.UNAVAILABLE, "SOAP fault (Server)")
    return SourceError(Department.TAX, FailureKind.BAD_PAYLOAD, "SOAP fault (Client)")


def _bad(exc: PayloadError) -> SourceError:
    return SourceError(Department.TAX, FailureKind.BAD_PAYLOAD, str(exc))


def _rating(item: Element) -> tuple[TaxRating, str | None]:
    """An nsxy element as a TaxRating and the taxpayer's name."""
    year_text = _required(item, "pjnd")
    if not (year_text.isascii() and year_text.isdigit() and len(year_text) == 4):
        raise PayloadError("pjnd is not a year")
    grade = _required(item, "xydj")
    if grade not in GRADES:
        raise PayloadError("xydj is not one of A B M C D")
    rating = TaxRating(
        year=int(year_text), grade=grade, evaluated_on=parse_iso(_text(item, "pjrq"), "pjrq")
    )
    return rating, _text(item, "nsrmc")


def _case(item: Element) -> tuple[CreditRecord, str | None]:
    """An aj element as a MAJOR_TAX_VIOLATION record and the taxpayer's name."""
    number = _required(item, "ajbh")
    nature = _text(item, "ajxz")
    facts = _text(item, "zywfss")
    parse_iso(_text(item, "rdrq"), "rdrq")
    record = CreditRecord(
        id=f"TAX:{number}",
        department=Department.TAX,
        kind=RecordKind.MAJOR_TAX_VIOLATION,
        title=f"重大税收违法失信主体（{nature}）" if nature else "重大税收违法失信主体",
        reason="：".join(part for part in (nature, facts) if part) or None,
        document_number=number,
        authority=_text(item, "rdjg"),
        listed_on=parse_iso(_text(item, "gbrq"), "gbrq"),
        # tax.md: tcrq is an EMPTY element while published.
        removed_on=parse_iso(_text(item, "tcrq"), "tcrq"),
        party_name=_text(item, "fddbrxm"),
        # tax.md: already masked (610802********0021); re-masking keeps it so.
        party_id_masked=mask_given_id(_text(item, "fddbrzjhm")),
    )
    return record, _text(item, "nsrmc")


def _facts(
    code: str,
    now: datetime,
    ratings: Mapping[str, list[tuple[TaxRating, str | None]]],
    cases: Mapping[str, list[tuple[CreditRecord, str | None]]],
    parts: frozenset[Part],
) -> SubjectFacts:
    """One code's facts from the answers of its chunk, one per part asked."""
    own_ratings = ratings.get(code, [])
    own_cases = cases.get(code, [])
    names = [name for _, name in own_ratings + own_cases if name]
    # tax.md: one nsxy per year in any order; the newest year first here.
    ordered = sorted((r for r, _ in own_ratings), key=lambda r: r.year, reverse=True)
    return SubjectFacts(
        department=Department.TAX,
        uscc=code,
        as_of=now,
        # tax.md: taxpayers with no rating (and no case) are simply absent.
        known=bool(own_ratings or own_cases),
        name=names[0] if names else None,
        records=tuple(record for record, _ in own_cases),
        tax_ratings=tuple(ordered),
        parts=parts,
    )


# Namespace-agnostic element access: the service's prefixes are free (tax.md) and the
# inner elements of `return` carry no namespace at all.


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _first_child(element: Element) -> Element | None:
    return next(iter(element), None)


def _child(element: Element, name: str) -> Element | None:
    return next((c for c in element if _local(c.tag) == name), None)


def _children(element: Element, name: str) -> list[Element]:
    return [c for c in element if _local(c.tag) == name]


def _text(element: Element, name: str) -> str | None:
    child = _child(element, name)
    if child is None or child.text is None:
        return None
    return child.text.strip() or None


def _required(element: Element, name: str) -> str:
    value = _text(element, name)
    if value is None:
        raise PayloadError(f"{name} is missing")
    return value
