"""Apollo Federation v2: the gateway as a subgraph whose Subject entity routers resolve by USCC."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Final, Literal

import strawberry
from strawberry.federation.schema import FederationAny

from core.errors import ErrorCode, GatewayError
from resolvers.subjects import find_subjects
from schema.permissions import context, require_not_public
from schema.query import Query
from schema.subject import Subject, plan_of

# The Federation version the SDL links to. Only @key is used, which every 2.x has; 2.3 is
# understood by every current router and composition tool (The Guild's composition knows
# versions up to 2.9 and refuses strawberry's default, 2.11).
FEDERATION_VERSION: Final[Literal["2.3"]] = "2.3"

# The union of the federation spec: every type with a @key (Subject is the only one).
Entity = Annotated[Subject, strawberry.union("_Entity")]


@strawberry.type(name="Query")
class FederatedQuery(Query):
    """The Query root with `_entities`; strawberry's federation schema adds `_service`."""

    @strawberry.field(
        name="_entities",
        description="联邦实体解析（路由器使用）/ Federation: the subjects a router refers to by "
        "USCC, each resolved like subject(uscc); one per representation, in order.",
        # Items are subjects, null (no department knows the code) or, for one representation,
        # its coded error: graphql-core answers an exception item as that item's error.
        graphql_type=list[Entity | None],
    )
    async def entities(
        self, info: strawberry.Info, representations: list[FederationAny]
    ) -> list[Subject | GatewayError | None]:
        """Called by a federation router for the Subjects another subgraph's answers name."""
        if len(representations) > 1:
            # Many subjects in one call are a batch (contract §5: `subjects`), which anonymous
            # callers may not send; one representation is `subject(uscc)`, open to all.
            require_not_public(info, "_entities with more than one representation")
        ctx = context(info)
        keys = [_uscc_of(index, r) for index, r in enumerate(representations)]
        codes = [key for key in keys if isinstance(key, str)]
        # One batch through the request's loaders, on the plan of the fields selected (the
        # `... on Subject` fragments), exactly as `subjects` and `subject(uscc)` ask; the
        # batch limit ([limits] max_batch, BATCH_TOO_LARGE) holds here too.
        lookups = iter(
            await find_subjects(
                ctx.loaders, ctx.today, codes, ctx.services.max_batch, plan_of(info)
            )
        )
        results: list[Subject | GatewayError | None] = []
        for key in keys:
            if isinstance(key, GatewayError):
                results.append(key)
                continue
            lookup = next(lookups)
            if lookup.view is not None:
                results.append(Subject(view=lookup.view))
            elif lookup.error_code is ErrorCode.INVALID_USCC:
                # The error subject(uscc) raises for this code, with the same message.
                results.append(GatewayError(lookup.error_code, lookup.error_message or ""))
            else:
                # Unknown, or unknown to the departments that answered: null, as subject(uscc)
                # answers; SOURCE_UNAVAILABLE names any department that failed.
                results.append(None)
        return results


def _uscc_of(index: int, representation: object) -> str | GatewayError:
    """The key of one representation, or the INVALID_ARGUMENT error of a malformed one."""
    if not isinstance(representation, Mapping):
        return _malformed(index, 'must be an object such as {"__typename": "Subject", "uscc": …}')
    if representation.get("__typename") != "Subject":
        return _malformed(index, "must have __typename Subject, the only entity here")
    uscc = representation.get("uscc")
    if not isinstance(uscc, str):
        return _malformed(index, "must carry the key uscc as a string")
    return uscc


def _malformed(index: int, problem: str) -> GatewayError:
    return GatewayError(ErrorCode.INVALID_ARGUMENT, f"representation {index} {problem}")
