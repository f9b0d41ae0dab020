"""The Person type and what contract §4 derives for it; every field reads a PersonView."""

from __future__ import annotations

from datetime import date

import strawberry

from core.masking import mask_id_number
from resolvers.catalogue import SubjectType
from resolvers.determination import judge
from resolvers.person_view import PersonView
from schema.determination import JointPunishment
from schema.enums import Scenario
from schema.permissions import context, require_regulator, viewer
from schema.subject import Subject
from schema.types import CreditRecord, SourceStatus


@strawberry.type(description="任职 / A position the person holds or held in a subject.")
class Representation:
    subject: Subject | None
    uscc: str
    role: str = strawberry.field(description="职务 / Position as registered, e.g. 法定代表人.")
    started_on: date | None
    ended_on: date | None
    current: bool = strawberry.field(description="今日在任 / In office today.")


@strawberry.type(
    description="记入个人信用记录 / A subject's active punishment attributed to the person."
)
class DerivedRecord:
    record: CreditRecord
    subject_uscc: str
    subject_name: str
    role: str = strawberry.field(description="列入之日所任职务 / Role held on the listing day.")


@strawberry.type(
    description="易地开张 / A position taken in another subject after a punished subject's listing."
)
class RelocationAlert:
    punished_subject_uscc: str
    listing: CreditRecord
    new_subject_uscc: str
    new_subject_name: str
    started_on: date


@strawberry.type(
    description="自然人（法定代表人、负责人、实际控制人）/ A natural person; every query "
    "is audited."
)
class Person:
    view: strawberry.Private[PersonView]

    @strawberry.field(description="脱敏身份证号 / ID number, masked.")
    def id_number_masked(self) -> str:
        return mask_id_number(self.view.id_number)

    @strawberry.field(description="完整身份证号，仅监管部门 / Full ID number; regulators only.")
    def id_number(self, info: strawberry.Info) -> str | None:
        return self.view.id_number if viewer(info).regulator else None

    @strawberry.field(description="姓名 / Name as the departments give it.")
    def name(self) -> str | None:
        return self.view.name

    @strawberry.field(
        description="本人记录（法院）；失效记录仅监管部门 / The person's own records (courts), "
        "active only unless includeInactive (regulators)."
    )
    def records(
        self, info: strawberry.Info, include_inactive: bool | None = False
    ) -> list[CreditRecord]:
        if include_inactive:
            require_regulator(info, "includeInactive")
        return [
            CreditRecord.from_view(v) for v in self.view.records if include_inactive or v.active
        ]

    @strawberry.field(
        description="任职的市场主体 / Subjects the person holds or held a position in."
    )
    def represented_subjects(self) -> list[Representation]:
        return [
            Representation(
                subject=Subject(view=r.subject) if r.subject and r.subject.known else None,
                uscc=r.position.uscc,
                role=r.position.role,
                started_on=r.position.started_on,
                ended_on=r.position.ended_on,
                current=r.current,
            )
            for r in self.view.representations
        ]

    @strawberry.field(
        description="记入个人信用记录：归于本人的主体惩戒记录 / Listings of subjects attributed "
        "to this person."
    )
    def derived_records(self) -> list[DerivedRecord]:
        return [
            DerivedRecord(
                record=CreditRecord.from_view(d.record),
                subject_uscc=d.subject_uscc,
                subject_name=d.subject_name,
                role=d.role,
            )
            for d in self.view.derived
        ]

    @strawberry.field(
        description="易地开张预警 / Subjects this person took a position in while a subject "
        "they were responsible for was punished."
    )
    def relocation_alerts(self) -> list[RelocationAlert]:
        return [
            RelocationAlert(
                punished_subject_uscc=a.punished_uscc,
                listing=CreditRecord.from_view(a.listing),
                new_subject_uscc=a.new_uscc,
                new_subject_name=a.new_name,
                started_on=a.started_on,
            )
            for a in self.view.relocation_alerts
        ]

    @strawberry.field(
        description="联合奖惩状态（本人及归于本人的记录）/ Joint status over own and derived "
        "records."
    )
    def joint_punishment(
        self, info: strawberry.Info, scenario: Scenario | None = strawberry.UNSET
    ) -> JointPunishment:
        ctx = context(info)
        found = judge(
            self.view.evidence(),
            ctx.services.catalogue,
            scenario or None,
            ctx.now,
            SubjectType.PERSON,
        )
        return JointPunishment.of(found)

    @strawberry.field(description="各部门答复情况 / What each department answered for this person.")
    def sources(self) -> list[SourceStatus]:
        return [SourceStatus.from_health(h) for h in self.view.source_states()]
