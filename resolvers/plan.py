"""What a lookup asks the departments: the parts a query's fields need, never more.

The schema builds one Plan per root field from the fields it selects (its table of field →
plan is the one place naming what each field reads); the loaders ask exactly the plan's
parts; a view read for a part its lookup did not ask raises NotAsked instead of answering.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from core.records import ALL_PARTS, Part


class NotAsked(RuntimeError):
    """A view was read for parts its lookup did not ask: a bug, never an answer to show."""


@dataclass(frozen=True, slots=True)
class Plan:
    """The parts of the departments one root field needs; built per request by the schema."""

    parts: frozenset[Part] = frozenset()
    # The subject's name is shown. It is the registered one (MARKET_ENTITIES), or, when the
    # register has none, whatever another department calls the subject: then the lookup
    # has to ask everyone (SubjectView.name).
    name: bool = False

    def __or__(self, other: Plan) -> Plan:
        """Both plans' needs; two fields of one root field are asked together."""
        return Plan(self.parts | other.parts, self.name or other.name)

    @staticmethod
    def union(plans: Iterable[Plan]) -> Plan:
        """One plan for several fields' plans (NOTHING when there are none)."""
        result = NOTHING
        for plan in plans:
            result |= plan
        return result


# Fields that read no department (uscc, region): the code alone answers them.
NOTHING = Plan()
# The register: name as registered, registration, legal representative; and the cheapest
# way to learn that a code exists at all (one market call per 100 codes).
REGISTER = Plan(frozenset({Part.MARKET_ENTITIES}))
NAME = Plan(REGISTER.parts, name=True)
TAX_GRADES = Plan(frozenset({Part.TAX_GRADES}))
WATER = Plan(frozenset({Part.WATER}))
# Everything: records, the joint status, supervision and sources rest on every department.
FULL = Plan(ALL_PARTS)


def knowing(plan: Plan) -> Plan:
    """The plan of a lookup that must say whether the code exists (`subject`, `subjects`)."""
    # A plan of no part asks the register: someone has to know a code before it is shown.
    return plan if plan.parts else REGISTER
