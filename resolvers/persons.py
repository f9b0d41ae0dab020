"""Query logic for persons: their answers, then their subjects, all through the loaders."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import date

from core.identity import InvalidIdentity, normalize_uscc
from core.records import Department, PersonFacts
from resolvers.answers import Answer
from resolvers.loaders import Loaders
from resolvers.person_view import PersonView
from resolvers.plan import FULL
from resolvers.subject_view import SubjectView

_Found = tuple[Department, Answer[PersonFacts], dict[str, SubjectView]]


async def find_person(loaders: Loaders, today: date, id_number: str) -> PersonView:
    """The person of a valid, normalised ID, with every subject they held a position in."""
    # Each department's positions are followed as soon as that department answers, so a
    # hung department costs one timeout, not one for the person and one for the subjects.
    found = await asyncio.gather(
        *(
            _with_subjects(loaders, today, d, pending)
            for d, pending in loaders.person(id_number).items()
        )
    )
    answers = {department: answer for department, answer, _ in found}
    subjects = {raw: view for _, _, views in found for raw, view in views.items()}
    return PersonView(id_number, answers, subjects, today)


async def _with_subjects(
    loaders: Loaders, today: date, department: Department, pending: Awaitable[Answer[PersonFacts]]
) -> _Found:
    answer = await pending
    codes: dict[str, str] = {}
    for position in answer.facts.positions if answer.facts else ():
        try:
            codes[position.uscc] = normalize_uscc(position.uscc)
        except InvalidIdentity:
            # A code the register itself got wrong names no subject we can look up.
            continue
    unique = list(dict.fromkeys(codes.values()))
    # One batched round for all the person's subjects, like the `subjects` query. Every
    # department is asked: derived records and the person's status rest on their records.
    answers = await loaders.subjects(unique, FULL)
    views = {
        code: SubjectView(code, subject_answers, today)
        for code, subject_answers in zip(unique, answers, strict=True)
    }
    return department, answer, {raw: views[code] for raw, code in codes.items()}
