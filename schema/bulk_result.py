"""A bulk check's result as frozen at checkedAt (contract §8), and as read back later.

Frozen once from the same objects `subject(uscc) { name jointPunishment(scenario)
supervision sources }` answers with, then stored as JSON: a result is never re-evaluated.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

import strawberry

from core.records import Department, ListingLevel, RecordKind
from core.sources import SourceState
from resolvers.catalogue import Catalogue, Scenario
from resolvers.determination import CreditClass, JointStatus, determine, supervise
from resolvers.subject_view import SubjectView
from schema.determination import AppliedMeasure, JointPunishment, Measure, Supervision
from schema.types import CreditRecord, SourceStatus

NOT_FOUND = "NOT_FOUND"


def freeze(
    view: SubjectView,
    catalogue: Catalogue,
    scenario: Scenario | None,
    ratios: Mapping[str, float],
    now: datetime,
) -> tuple[str, dict[str, Any]]:
    """The status key and the JSON of one code's result, determined now."""
    found = determine(view, catalogue, scenario, now)
    joint = JointPunishment.of(found)
    general = determine(view, catalogue, None, now)
    supervision = supervise(general, view, ratios)
    result = {
        "name": view.name,
        "jointPunishment": {
            "status": joint.status.value,
            "complete": joint.complete,
            "missingSources": [d.value for d in joint.missing_sources],
            "listings": [record_json(r) for r in joint.listings],
            "measures": [_applied(m) for m in joint.measures],
            "incentives": [_applied(m) for m in joint.incentives],
            "evaluatedAt": joint.evaluated_at.isoformat(),
        },
        "supervision": {
            "creditClass": supervision.credit_class.value,
            "spotCheckRatio": supervision.spot_check_ratio,
            "basis": list(supervision.basis),
        },
        "sources": [
            {
                "department": h.department.value,
                "state": h.state.value,
                "asOf": h.as_of.isoformat() if h.as_of is not None else None,
                "message": h.message,
            }
            for h in view.source_states()
        ],
        "checkedAt": now.isoformat(),
    }
    return joint.status.value, result


def record_json(r: CreditRecord) -> dict[str, Any]:
    """A record as stored and as webhooks send it: the CreditRecord fields by GraphQL name."""
    return {
        "id": str(r.id),
        "department": r.department.value,
        "kind": r.kind.value,
        "level": r.level.value,
        "title": r.title,
        "reason": r.reason,
        "documentNumber": r.document_number,
        "authority": r.authority,
        "listedOn": r.listed_on.isoformat() if r.listed_on else None,
        "endsOn": r.ends_on.isoformat() if r.ends_on else None,
        "active": r.active,
        "repaired": r.repaired,
        "disputed": r.disputed,
    }


def _applied(m: AppliedMeasure) -> dict[str, Any]:
    return {"code": str(m.measure.code), "triggeredBy": list(m.triggered_by)}


def thaw_joint(data: Mapping[str, Any], catalogue: Catalogue) -> JointPunishment:
    """The JointPunishment of a stored result."""
    return JointPunishment(
        status=JointStatus(data["status"]),
        complete=bool(data["complete"]),
        missing_sources=[Department(d) for d in data["missingSources"]],
        listings=[thaw_record(r) for r in data["listings"]],
        measures=[_thaw_applied(m, catalogue) for m in data["measures"]],
        incentives=[_thaw_applied(m, catalogue) for m in data["incentives"]],
        evaluated_at=datetime.fromisoformat(data["evaluatedAt"]),
    )


def thaw_supervision(data: Mapping[str, Any]) -> Supervision:
    """The Supervision of a stored result."""
    return Supervision(
        credit_class=CreditClass(data["creditClass"]),
        spot_check_ratio=float(data["spotCheckRatio"]),
        basis=list(data["basis"]),
    )


def thaw_sources(data: list[Mapping[str, Any]]) -> list[SourceStatus]:
    """The source states of a stored result."""
    return [
        SourceStatus(
            department=Department(s["department"]),
            state=SourceState(s["state"]),
            as_of=datetime.fromisoformat(s["asOf"]) if s["asOf"] else None,
            message=s["message"],
        )
        for s in data
    ]


def thaw_record(r: Mapping[str, Any]) -> CreditRecord:
    """One stored listing."""
    return CreditRecord(
        id=strawberry.ID(r["id"]),
        department=Department(r["department"]),
        kind=RecordKind(r["kind"]),
        level=ListingLevel(r["level"]),
        title=r["title"],
        reason=r["reason"],
        document_number=r["documentNumber"],
        authority=r["authority"],
        listed_on=date.fromisoformat(r["listedOn"]) if r["listedOn"] else None,
        ends_on=date.fromisoformat(r["endsOn"]) if r["endsOn"] else None,
        active=bool(r["active"]),
        repaired=bool(r["repaired"]),
        disputed=bool(r["disputed"]),
    )


def _thaw_applied(m: Mapping[str, Any], catalogue: Catalogue) -> AppliedMeasure:
    # Measures are stored by code; the catalogue ships with the gateway and keeps its codes.
    return AppliedMeasure(
        measure=Measure.of(catalogue.by_code[m["code"]]), triggered_by=list(m["triggeredBy"])
    )
