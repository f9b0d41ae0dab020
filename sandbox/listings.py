"""Listings changed while the sandbox runs: `POST /_admin/listings` on courts and market.

A demonstration or a test of watchlist monitoring (contract §9) needs a department whose
answers change: a subject gets listed, a listing ends. Each of the two departments with
lists parses the same request shape here and applies it to the data its server answers
from, so the change shows at once on its normal query endpoints. The runner's
`add_listing` / `end_listing` go through the same `change_listings` function.

Request (JSON object, nothing else in it):
    {"action": "add", "list": "<list>", "uscc": "<USCC of a dataset company>"}
    {"action": "end", "list": "<list>", "id": "<the department's record id>"}
Answer, HTTP 200: see `answer`. Errors: 400 (malformed JSON, unknown action or list, a
uscc the dataset does not hold, a missing or extra field), 404 (no record with that id on
that list), 409 (the record has already ended), each as {"error": "<message>"}.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, TypedDict

import orjson
from aiohttp import web

from sandbox.faults import json_response

LISTINGS_PATH: Final = "/_admin/listings"
ADD: Final = "add"
END: Final = "end"
# The lists each department can change, with the prefix the gateway's adapter gives the
# department's record id (adapters/courts.py, adapters/market.py).
GATEWAY_PREFIX: Final[Mapping[str, Mapping[str, str]]] = {
    "courts": {"shixin": "COURTS:", "xgl": "COURTS:xgl:"},
    "market": {
        "abnormal": "MARKET:abnormal:",
        "serious_illegal": "MARKET:illegal:",
        "penalty": "MARKET:penalty:",
    },
}

Record = dict[str, object]


class ListingAnswer(TypedDict):
    """The admin answer of a change, as JSON; see `answer`."""

    action: str
    department: str
    list: str
    uscc: str | None
    id: str
    gateway_id: str
    ids: list[str]
    gateway_ids: list[str]
    records: list[Record]


ChangeListings = Callable[[web.Application, object], ListingAnswer]


class ListingError(ValueError):
    """A change the department refuses; `status` is the HTTP status of the admin answer."""

    status = 400


class UnknownListing(ListingError, LookupError):
    """No record with the given id on that list (404)."""

    status = 404


class ListingEnded(ListingError):
    """The record was already removed or repaired (409)."""

    status = 409


@dataclass(frozen=True, slots=True)
class ListingChange:
    """A validated request: `uscc` for an add, `record_id` for an end."""

    action: str
    list: str
    uscc: str = ""
    record_id: str = ""


def parse_change(department: str, body: object) -> ListingChange:
    """The request checked for shape; whether the uscc or id exists is the department's call."""
    lists = GATEWAY_PREFIX[department]
    if not isinstance(body, dict):
        raise ListingError("the body must be a JSON object")
    action, list_name = body.get("action"), body.get("list")
    if action not in (ADD, END):
        raise ListingError(f"action must be {ADD!r} or {END!r}, got {action!r}")
    if not isinstance(list_name, str) or list_name not in lists:
        raise ListingError(f"{department} lists are {', '.join(lists)}; got {list_name!r}")
    field = "uscc" if action == ADD else "id"
    extra = sorted(set(body) - {"action", "list", field})
    if extra:
        raise ListingError(f"unexpected field(s) for {action!r}: {', '.join(extra)}")
    value = body.get(field)
    if not isinstance(value, str) or not value:
        raise ListingError(f"{action!r} needs {field!r}, a non-empty string")
    if action == ADD:
        return ListingChange(ADD, list_name, uscc=value)
    return ListingChange(END, list_name, record_id=value)


def answer(
    department: str,
    change: ListingChange,
    uscc: str | None,
    ids: Sequence[str],
    records: Sequence[Record],
) -> ListingAnswer:
    """The admin answer of a change.

    `id` / `gateway_id`: the department's id of the record added or ended, and the id the
    gateway's records carry for it; `ids` / `gateway_ids`: every record the change touched
    (a 限制消费 case has a row for the company and one for its representative);
    `records`: those records as the department's query endpoint publishes them now (an
    ended courts case: as it was published last); `uscc`: the subject (null for a
    person's courts case).
    """
    prefix = GATEWAY_PREFIX[department][change.list]
    return {
        "action": change.action,
        "department": department,
        "list": change.list,
        "uscc": uscc,
        "id": ids[0],
        "gateway_id": prefix + ids[0],
        "ids": list(ids),
        "gateway_ids": [prefix + i for i in ids],
        "records": list(records),
    }


def add_listing_route(app: web.Application, change_listings: ChangeListings) -> None:
    """Used by courts and market create_app: `POST /_admin/listings` (exempt from faults)."""

    async def post(request: web.Request) -> web.Response:
        try:
            body = orjson.loads(await request.read())
        except orjson.JSONDecodeError as exc:
            return json_response({"error": f"the body is not JSON: {exc}"}, status=400)
        try:
            return json_response(change_listings(request.app, body))
        except ListingError as exc:
            return json_response({"error": str(exc)}, status=exc.status)

    app.router.add_post(LISTINGS_PATH, post)
