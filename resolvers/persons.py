"""Query logic for persons: their answers, then their subjects, all through the loaders."""

from __future__ import annotations

from datetime import date

from gateway.identity import InvalidIdentity, normalize_uscc
from resolvers.loaders import Loaders
from resolvers.person_view import PersonView
from resolvers.subject_view import SubjectView


async def find_person(loaders: Loaders, today: date, id_number: str) -> PersonView:
    """The person of a valid, normalised ID, with every subject they held a position in."""
    answers = (await loaders.persons([id_number]))[0]
    codes: dict[str, str] = {}
    for answer in answers.values():
        for position in answer.facts.positions if answer.facts else ():
            try:
                codes[position.uscc] = normalize_uscc(position.uscc)
            except InvalidIdentity:
                # A code the register itself got wrong names no subject we can look up.
                continue
    unique = list(dict.fromkeys(codes.values()))
    # One batched round for all the person's subjects, like the `subjects` query.
    views = {
        code: SubjectView(code, subject_answers, today)
        for code, subject_answers in zip(unique, await loaders.subjects(unique), strict=True)
    }
    return PersonView(id_number, answers, {raw: views[code] for raw, code in codes.items()}, today)
