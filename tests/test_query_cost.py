"""What a query document may cost before it is validated: fields and repeated fields (D2).

graphql-core's OverlappingFieldsCanBeMergedRule compares every pair of fields selected
under one response name: about 400 repeats of `measures { code }` (7 KB, under the token
limit) cost most of a second of event-loop CPU each. These tests count the rule's work by
wrapping graphql-core's own functions, never by timing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from graphql.validation.rules import overlapping_fields_can_be_merged as overlapping

from core.clock import Clock
from gateway.app import create_app
from sandbox.model import Dataset
from sandbox.runner import SandboxThread
from tests.conftest import TODAY, gateway_config
from tests.servers import GatewayServer, GraphQLClient

HOSTILE = "{ " + "measures { code } " * 398 + "}"
MEASURE = "fragment M on Measure { code name kind content legalBasis }"


def _refused(body: Any, wording: str) -> None:
    assert body["data"] is None, body
    assert [e["extensions"]["code"] for e in body["errors"]] == ["QUERY_TOO_COMPLEX"], body
    assert wording in body["errors"][0]["message"], body["errors"]


def _served(body: Any) -> None:
    assert "errors" not in body, body["errors"]
    assert body["data"]


@pytest.fixture
def overlap_work(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Counts the selection sets graphql-core's field-merging rule visits, and its budget."""
    work: Counter[str] = Counter()
    rule = overlapping.OverlappingFieldsCanBeMergedRule
    enter = rule.enter_selection_set
    spend = overlapping.spend_complexity_budget

    def counted_enter(self: Any, *args: Any) -> Any:
        work["selection sets"] += 1
        return enter(self, *args)

    def counted_spend(context: Any, cost: int) -> None:
        work["budget"] += cost
        spend(context, cost)

    monkeypatch.setattr(rule, "enter_selection_set", counted_enter)
    monkeypatch.setattr(overlapping, "spend_complexity_budget", counted_spend)
    return work


@pytest.fixture(scope="module")
def small(sandbox: SandboxThread) -> Iterator[GraphQLClient]:
    """A gateway with small field limits, so that short queries reach them."""
    limits = {"max_fields": 20, "max_field_repeats": 3}
    app = create_app(gateway_config(sandbox.urls, limits=limits), Clock(TODAY))
    server = GatewayServer(app).start()
    yield GraphQLClient(server.url)
    server.stop()


def test_repeated_fields_are_refused_before_validation_compares_them(
    client: GraphQLClient, overlap_work: Counter[str]
) -> None:
    _refused(client.query(HOSTILE), "measures 398 times")
    # Refused when validation entered the document: the comparing rule never ran.
    assert overlap_work["selection sets"] == 0
    # The same fields once each, ten times (max_field_repeats), are an ordinary query.
    _served(client.query("{ " + "measures { code } " * 10 + "}"))
    _refused(client.query("{ " + "measures { code } " * 11 + "}"), "at most 10 allowed")


def test_a_fragment_counts_each_time_it_is_spread(
    client: GraphQLClient, overlap_work: Counter[str]
) -> None:
    spread = "{ " + "...Q " * 300 + "}\nfragment Q on Query { measures { code } }"
    _refused(client.query(spread), "measures 300 times")
    # Twenty nested fragments, each spreading the next twice: 2^20 selections of measures,
    # counted without being expanded.
    nested = ["{ ...F0 }", "fragment F20 on Query { measures { code } }"]
    nested += [f"fragment F{n} on Query {{ ...F{n + 1} ...F{n + 1} }}" for n in range(20)]
    _refused(client.query("\n".join(nested)), "more than 1000 fields")
    # Nor may a fragment no operation uses hide the repeats (graphql-core validates it too).
    unused = "{ measures { code } }\nfragment U on Query { " + "measures { code } " * 398 + "}"
    _refused(client.query(unused), "measures 398 times")
    # Nor one that spreads itself: graphql-core reports the cycle only after comparing.
    cyclic = "{ ...A }\nfragment A on Query { ...B " + "measures { code } " * 398 + "}\n"
    _refused(client.query(cyclic + "fragment B on Query { ...A }"), "measures 398 times")
    assert overlap_work["selection sets"] == 0


def test_max_fields_counts_fragments_where_they_are_spread(small: GraphQLClient) -> None:
    # Each `measures { ...M }` selects 1 + 5 fields: three of them are 18, four are 24.
    three = "{ a: measures { ...M } b: measures { ...M } c: measures { ...M } }\n" + MEASURE
    _served(small.query(three))
    four = three.replace("c: measures", "c: measures { ...M } d: measures", 1)
    _refused(small.query(four), "more than 20 fields")


def test_max_field_repeats_merges_same_named_fields(small: GraphQLClient) -> None:
    _served(small.query("{ measures { code } measures { code } measures { name } }"))
    _refused(small.query("{ " + "measures { code } " * 4 + "}"), "measures 4 times")
    # Two selection sets of two `code` each: validation compares the four pairwise, as
    # the answer merges them into one `measures`.
    merged = "{ measures { code code } measures { code code } }"
    _refused(small.query(merged), "measures.code 4 times")
    # Through fragments and inline fragments as well.
    spread = "{ measures { ...C ... on Measure { code } } measures { ...C ...C } }\n"
    _refused(small.query(spread + "fragment C on Measure { code }"), "measures.code 4 times")


def test_the_costliest_query_the_limits_admit_stays_cheap_to_validate(
    client: GraphQLClient, dataset: Dataset, overlap_work: Counter[str]
) -> None:
    # Ten copies of a broad subject query: ten repeats of every field at every level,
    # 680 fields in all, the shape that costs graphql-core's comparing rule the most.
    broad = """uscc name region { code name } registration { entityType status authority }
      legalRepresentative { name idNumberMasked }
      records { id department kind level title reason documentNumber authority listedOn
                endsOn active repaired disputed }
      taxCredit { grade year } waterCredit { grade validUntil cancelled }
      sources { department state asOf message }
      jointPunishment { status complete missingSources listings { id kind title listedOn }
        measures { measure { code name legalBasis content } triggeredBy }
        incentives { measure { code name legalBasis content } triggeredBy } }
      supervision { creditClass spotCheckRatio basis }"""
    uscc = dataset.examples["stitched.all_departments"]
    query = "query($u: String!) { " + f"subject(uscc: $u) {{ {broad} }} " * 10 + "}"
    _served(client.query(query, {"u": uscc}))
    # graphql-core allows the rule 500,000 units before it aborts validation (about a
    # second of CPU); the hostile query above spends 395,000 when it is not refused.
    assert 0 < overlap_work["budget"] < 20_000, overlap_work
