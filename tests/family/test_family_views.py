"""The family writes its own words into the plan (issue #18): each person on the plan has one
fragment of the lead node, of category ``family``, versioned on every edit through the one
authoring path; it names its writer by plan-local reference and role (``written_by``), never
by name, and is shared under the consent like any fragment. Real nodes on loopback: the lead
(social services), a school granted ``family`` by the consent, and BUP, which is not."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date
from itertools import permutations
from typing import Any

import aiohttp
import pytest
from sqlalchemy import text

from node.errors import Conflict, InvalidInput, NotFound
from node.oidc.resident import Resident, identity_hash
from node.services.family_views import family_fragment_id, read_view, write_view
from node.services.peers import fetch_peer, trust_peer
from node.services.plan_close import close_plan
from node.services.plans import invite_participant
from node.services.provider_sign_in import subject_key
from node.services.resident_sign_in import sign_in_resident
from node.store.exchange_log import LogFilter, query_log
from node.store.records import insert_fragment_version, user_by_id
from node.store.tables import FragmentVersion, User
from tests.family.people import record_person
from tests.support.federation import BUP, RunningNode, start_node, stop_all
from tests.support.plans import add_child, create_plan, link_invitation

from .test_resident_sign_in import CLAIM, MARIA, OLLE, Family, family, sign_in  # noqa: F401  (fixture)

EMMA = "201003152384"  # the young person on the plan, sixteen (synthetic)


@dataclass
class Views:
    """The family fixture with BUP taking part too, consent recorded, and the residents."""

    family: Family
    bup: RunningNode
    maria: User
    emma: User


async def resident(setup: Family, number: str, born: date) -> User:
    """The resident user of ``number`` as a sign-in through the provider makes it."""
    key = subject_key(setup.lead.node.config.directory)
    hashed = identity_hash(number, key, setup.clock.now().date())
    signed_in = await sign_in_resident(
        setup.lead.node.store, setup.provider.issuer, Resident(hashed, born), 13, setup.clock.now()
    )
    return signed_in.user


async def olles_other_plan(setup: Family) -> str:
    """Another plan at the lead, with Olle (a guardian who can sign in) on its consent only."""
    lead = setup.lead
    child_id = await add_child(lead, "Annan Testsson", "20160101-2386")
    other_plan = await create_plan(lead, child_id, [setup.school.node_id])
    person = ("p1", "Olle Testsson", "guardian", OLLE)
    await record_person(lead, other_plan, person, setup.clock.now())
    return other_plan


def people_and_grants(setup: Family, bup: str) -> dict[str, Any]:
    lead, school = setup.lead.node_id, setup.school.node_id
    day = setup.clock.now().date().isoformat()
    return {
        "people": [
            {"ref": "p1", "name": "Maria Testsson", "role": "guardian", "required": True,
             "answer": "consents", "answered_on": day, "method": "e_form"},
            {"name": "Emma Testsson", "role": "young_person", "age": "16", "required": True,
             "answer": "consents", "answered_on": day, "method": "e_form",
             "personnummer": EMMA},
        ],
        "grants": [
            {"from": lead, "to": [school], "categories": ["family", "social"]},
            {"from": lead, "to": [bup], "categories": ["social"]},
            {"from": school, "to": [lead, bup], "categories": ["education"]},
        ],
        "valid_from": "2026-01-01T00:00:00Z",
        "valid_until": "2030-01-01T00:00:00Z",
        "evidence_ref": "E-tjänst 2026-0044",
    }  # fmt: skip


async def connect_one(node: RunningNode, others: list[RunningNode]) -> None:
    """``node`` and each of ``others`` trust each other (the others already trust one another)."""
    async with aiohttp.ClientSession() as session:
        for a, b in permutations([node, *others], 2):
            if node in (a, b):
                fetched = await fetch_peer(session, b.url)
                await trust_peer(a.node.engine, fetched, a.node_id, a.node.clock.now())
    for n in (node, *others):
        await n.node.reload_peers()


@pytest.fixture
async def views(family: Family) -> AsyncIterator[Views]:  # noqa: F811
    lead = family.lead
    family.provider.accounts["emma"] = {CLAIM: EMMA}  # signs in through the provider too
    family.provider.restart()
    bup = await start_node(
        lead.node.config.directory.parent, BUP,
        (f"sqlite:///{lead.node.config.directory.parent / 'bup.db'}", ""), family.clock,
    )  # fmt: skip
    try:
        await connect_one(bup, [lead, family.school])
        lead_user = await user_by_id(lead.node.engine, "lead")
        assert lead_user is not None
        await invite_participant(lead.node, lead_user, family.plan_id, bup.node_id)
        for participant in (family.school, bup):
            await add_child(participant)
            await link_invitation(participant, family.plan_id)
        body = people_and_grants(family, bup.node_id)
        status, answer = await lead.api("POST", f"/plans/{family.plan_id}/consent", "lead", body)
        assert status == 201, answer
        maria = await resident(family, MARIA, date(1985, 6, 12))
        emma = await resident(family, EMMA, date(2010, 3, 15))
        yield Views(family, bup, maria, emma)
    finally:
        await stop_all([bup])


async def rows(node: RunningNode, plan_id: str) -> list[dict[str, Any]]:
    async with node.node.engine.connect() as conn:
        result = await conn.execute(
            text(
                "SELECT fragment_id, version, category, content, authored_by FROM fragment_version"
                " WHERE plan_id = :p ORDER BY fragment_id, version"
            ),
            {"p": plan_id},
        )
        return [dict(r) for r in result.mappings()]


async def test_a_guardian_writes_the_familys_view_and_each_edit_is_a_new_version(
    views: Views,
) -> None:
    setup, lead = views.family, views.family.lead
    plan_id = setup.plan_id
    assert (await read_view(lead.node, views.maria, plan_id)).text == ""
    first = await write_view(lead.node, views.maria, plan_id, "  Vi vill ha en plan.  ")
    second = await write_view(lead.node, views.maria, plan_id, "Vi vill ha en plan, inte fyra.")
    assert first["fragment_id"] == second["fragment_id"] == family_fragment_id(plan_id, "p1")
    assert (first["version"], second["version"]) == (1, 2)
    saved = [r for r in await rows(lead, plan_id) if r["fragment_id"] == first["fragment_id"]]
    assert [r["authored_by"] for r in saved] == ["family:p1", "family:p1"]
    assert {r["category"] for r in saved} == {"family"}
    content = json.loads(saved[-1]["content"])
    assert content["family_view"] == "Vi vill ha en plan, inte fyra."
    assert content["child_view"] == ""
    assert content["written_by"] == {"ref": "p1", "role": "guardian"}
    assert "Maria" not in saved[-1]["content"]
    view = await read_view(lead.node, views.maria, plan_id)
    assert (view.member, view.text, view.version) == ("family_view", content["family_view"], 2)


async def test_the_young_person_writes_their_own_view_in_a_fragment_of_their_own(
    views: Views,
) -> None:
    lead, plan_id = views.family.lead, views.family.plan_id
    await write_view(lead.node, views.maria, plan_id, "Familjen tycker så här.")
    saved = await write_view(lead.node, views.emma, plan_id, "Jag vill ha lugn på rasten.")
    assert saved["content"]["child_view"] == "Jag vill ha lugn på rasten."
    assert saved["content"]["written_by"]["role"] == "young_person"
    fragments = {r["fragment_id"] for r in await rows(lead, plan_id)}
    ref = saved["content"]["written_by"]["ref"]
    assert fragments == {family_fragment_id(plan_id, "p1"), family_fragment_id(plan_id, ref)}
    assert (await read_view(lead.node, views.maria, plan_id)).text == "Familjen tycker så här."


@pytest.mark.parametrize(
    ("text", "code"), [("", "missing"), ("   \n ", "missing"), ("x" * 4001, "string_too_long")]
)
async def test_empty_or_too_long_text_is_refused_at_its_field_and_nothing_is_saved(
    views: Views, text: str, code: str
) -> None:
    lead, plan_id = views.family.lead, views.family.plan_id
    before = await rows(lead, plan_id)
    with pytest.raises(InvalidInput) as refused:
        await write_view(lead.node, views.maria, plan_id, text)
    assert refused.value.fields["text"].code == code
    assert await rows(lead, plan_id) == before


async def test_a_resident_of_another_plan_can_neither_read_nor_write_this_one(
    views: Views,
) -> None:
    setup, lead = views.family, views.family.lead
    other_plan = await olles_other_plan(setup)
    olle = await resident(setup, OLLE, date(1990, 1, 1))
    before = await rows(lead, setup.plan_id)
    for call in (read_view(lead.node, olle, setup.plan_id),
                 write_view(lead.node, olle, setup.plan_id, "Hej")):  # fmt: skip
        with pytest.raises(NotFound) as hidden:
            await call
        assert hidden.value.code == "no_such_plan"
    assert await rows(lead, setup.plan_id) == before
    await write_view(lead.node, olle, other_plan, "Min egen plan.")  # his own plan: fine


async def test_a_closed_plan_takes_no_more_views(views: Views) -> None:
    lead, plan_id = views.family.lead, views.family.plan_id
    await write_view(lead.node, views.maria, plan_id, "Före.")
    lead_user = await user_by_id(lead.node.engine, "lead")
    assert lead_user is not None
    await close_plan(lead.node, lead_user, plan_id)
    with pytest.raises(Conflict) as closed:
        await write_view(lead.node, views.maria, plan_id, "Efter.")
    assert closed.value.code == "plan_closed"
    assert (await read_view(lead.node, views.maria, plan_id)).text == "Före."


async def test_a_professional_neither_edits_the_familys_words_nor_claims_to_be_the_family(
    views: Views,
) -> None:
    lead, plan_id = views.family.lead, views.family.plan_id
    saved = await write_view(lead.node, views.maria, plan_id, "Våra ord.")
    edit = {"category": "family", "content": {"family_view": "Ändrat av personal."}}
    status, refused = await lead.api(
        "PUT", f"/plans/{plan_id}/fragments/{saved['fragment_id']}", "lead", edit
    )
    assert status == 403 and refused["code"] == "family_fragment", refused
    claim = {
        "category": "family",
        "content": {"family_view": "Påhittat", "written_by": {"ref": "p1", "role": "guardian"}},
    }
    status, refused = await lead.api("POST", f"/plans/{plan_id}/fragments", "prof", claim)
    assert status == 422 and "content.written_by" in str(refused), refused
    assert (await read_view(lead.node, views.maria, plan_id)).text == "Våra ord."


async def test_the_familys_words_reach_the_participant_granted_family_and_no_other(
    views: Views,
) -> None:
    setup, lead = views.family, views.family.lead
    plan_id = setup.plan_id
    await write_view(lead.node, views.maria, plan_id, "Vi vill ha en plan, inte fyra.")
    await write_view(lead.node, views.emma, plan_id, "Jag vill ha lugn på rasten.")
    status, at_school = await setup.school.api("GET", f"/plans/{plan_id}/shared", "prof")
    assert status == 200, at_school
    family_views = {v["text"]: v for v in at_school["views"]["family"]}
    child_views = {v["text"]: v for v in at_school["views"]["child"]}
    by_maria = family_views["Vi vill ha en plan, inte fyra."]
    assert by_maria["written_by"] == {"ref": "p1", "role": "guardian"}
    assert by_maria["provenance"]["origin"] == lead.node_id
    assert by_maria["provenance"]["category"] == "family"
    assert child_views["Jag vill ha lugn på rasten."]["written_by"]["role"] == "young_person"
    wire = json.dumps(at_school, ensure_ascii=False)
    assert "Maria Testsson" not in wire and "Emma Testsson" not in wire
    assert MARIA not in wire and EMMA not in wire
    # BUP is granted social from the lead, not family: the family's words stay at the lead
    status, at_bup = await views.bup.api("GET", f"/plans/{plan_id}/shared", "prof")
    assert status == 200, at_bup
    assert at_bup["views"] == {"child": [], "family": []}
    assert "Jag vill ha lugn" not in json.dumps(at_bup, ensure_ascii=False)
    from_lead = [p for p in at_bup["participants"] if p["node_id"] == lead.node_id]
    assert from_lead and from_lead[0]["not_granted"] == [
        {"category": "family", "reason": "category_not_granted"}
    ]
    # the lead's exchange log: both family fragments released to the school, none to BUP
    entries = await query_log(
        lead.node.engine, LogFilter(plan_id=plan_id, message_type="fragments.request")
    )
    released = {e["peer"]: (e["categories"], e["released"]) for e in entries}
    assert released == {
        setup.school.node_id: ("family,social", 2),
        views.bup.node_id: ("social", 0),
    }
    # the lead's own assembly has both, marked the same way
    status, at_lead = await lead.api("GET", f"/plans/{plan_id}/shared", "lead")
    assert status == 200
    assert {v["written_by"]["ref"] for v in at_lead["views"]["family"]} == {"p1"}


async def test_the_page_answers_a_resident_of_another_plan_as_if_there_were_no_plan(
    views: Views,
) -> None:
    """Over HTTP through the residents' provider: Olle is on another plan only; this plan's
    page is 404 to him, and his post saves nothing."""
    setup, lead = views.family, views.family.lead
    other_plan = await olles_other_plan(setup)
    before = await rows(lead, setup.plan_id)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        assert (await sign_in(http, lead, "olle")).status == 303
        own = f"{lead.url}/familj/planer/{other_plan}/synpunkter"
        async with http.get(own) as page:
            assert page.status == 200
            csrf = (await page.text()).split('name="csrf_token" value="')[1].split('"')[0]
        theirs = f"{lead.url}/familj/planer/{setup.plan_id}/synpunkter"
        async with http.get(theirs) as page:
            assert page.status == 404 and "Det finns ingen sådan plan här." in await page.text()
        async with http.post(theirs, data={"text": "Hej", "csrf_token": csrf}) as page:
            assert page.status == 404
        async with http.post(own, data={"text": "", "csrf_token": csrf}) as page:
            assert page.status == 422 and 'id="text-error"' in await page.text()
    assert await rows(lead, setup.plan_id) == before
    assert await rows(lead, other_plan) == []


async def test_only_the_lead_speaks_for_the_family_a_participants_claim_discredits_its_reply(
    views: Views,
) -> None:
    """A school whose store says its education fragment is the family's own words (as a
    rogue or broken node would send it): the lead uses nothing of that reply (SPEC §6.3)."""
    setup, school = views.family, views.family.school
    forged = {"summary": "Skolans text", "written_by": {"ref": "p1", "role": "guardian"}}
    async with school.node.store.writing() as conn:
        await insert_fragment_version(
            conn,
            FragmentVersion(
                fragment_id=str(uuid.uuid4()), version=1, plan_id=setup.plan_id,
                category="education", indicators="", content=json.dumps(forged),
                authored_by="prof", authored_at=setup.clock.now(),
            ),
        )  # fmt: skip
    status, at_lead = await setup.lead.api("GET", f"/plans/{setup.plan_id}/shared", "lead")
    assert status == 200, at_lead
    from_school = [p for p in at_lead["participants"] if p["node_id"] == school.node_id]
    assert from_school[0]["status"] == "invalid" and from_school[0]["reason"] == "malformed"
    assert "Skolans text" not in json.dumps(at_lead, ensure_ascii=False)
