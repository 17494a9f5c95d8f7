"""Valid and invalid bodies for every shipped protocol template (docs/ARCHITECTURE.md "Shipped templates"), as
plain data.

The unit tests (``tests/unit/norms/test_shipped_templates.py``) run each example through
``Template.check``; an end-to-end test can send the same examples over a real server. Both read:

- ``EXAMPLES[template_id](now)``: a list of ``Case`` (must be accepted) and ``Bad`` (must be
  refused with ``Bad.code``), built relative to ``now`` (the envelope's ``created`` time), so
  minimum-notice rules hold whatever the date. Valid examples keep a margin of at least an hour
  before any deadline, so an end-to-end sender that stamps ``created`` seconds later still passes.
- The sender is a member of party ``SENDER_PARTY`` (``north``) with the template's role
  (``liaison``; ``agent`` for ``heartbeat`` and ``echo``) unless ``Bad.sender_role`` names another,
  sending on a channel whose agreement has the parties ``PARTIES`` (the demo deployment's) and
  carries ``DEMO_CATALOGUE``. The envelope kind is the template's kind.
- ``reply_template``: the example answers a message of that template sent by another party
  (``reply_to`` names it). An end-to-end test first sends a valid example of ``reply_template``
  from another party (for ``heartbeat``, its agent) and replies to that; a unit test gives the
  rule context a ``Replied`` of that template from ``south``.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from hotline import deployment
from hotline.envelope import Precedence
from hotline.times import format_time
from hotline.typed import to_json

FLASH, IMMEDIATE, PRIORITY, ROUTINE = (Precedence.FLASH, Precedence.IMMEDIATE, Precedence.PRIORITY,
                                       Precedence.ROUTINE)
SENDER_PARTY = "north"
PARTIES = ("north", "south", "mediator")

# The shipped template ids, exactly as docs/ARCHITECTURE.md "Shipped templates" lists them.
TEMPLATE_IDS = ("message", "preagreed", "risk-assessment", "launch-notification",
                "unusual-activity-query", "unusual-activity-reply", "incident-at-sea",
                "data-exchange", "consultation-request", "humanitarian-notice", "heartbeat", "echo")


@dataclass(frozen=True)
class Case:
    """A body the template accepts when sent with ``precedence``."""

    name: str
    precedence: Precedence
    body: dict[str, Any]
    reply_template: str | None = None  # answers a message of this template from another party


@dataclass(frozen=True)
class Bad:
    """A body (or precedence, reply or sender) the template refuses with ``code``."""

    name: str
    precedence: Precedence
    body: dict[str, Any]
    code: str  # template.invalid, norm.late_notice, norm.order, norm.sequence, norm.reply_to, ...
    reply_template: str | None = None
    sender_role: str | None = None  # send as this role instead of the template's own


Example = Case | Bad

# The content of every file an example attaches, by its SHA-256 (``attached``): an end-to-end
# sender uploads it before it sends the example.
FILES: dict[str, bytes] = {}


def attached(name: str, media_type: str, content: bytes) -> dict[str, Any]:
    """The reference a body gives to a file ``name`` of ``content``, which ``FILES`` keeps."""
    digest = base64.urlsafe_b64encode(hashlib.sha256(content).digest()).decode().rstrip("=")
    FILES[digest] = content
    return {"sha256": digest, "size": len(content), "media_type": media_type, "name": name}


# The demo agreement's pre-agreed catalogue (``preagreed`` examples pick from it).
DEMO_CATALOGUE = to_json(deployment.DEMO_CATALOGUE)  # as an agreement file holds it


def _at(now: datetime, **delta: float) -> str:
    """An RFC 3339 time ``delta`` after (or, negative, before) ``now``."""
    return format_time(now + timedelta(**delta))


def _day(now: datetime, days: int) -> str:
    return (now + timedelta(days=days)).date().isoformat()


def _point(lat: str, lon: str) -> dict[str, str]:
    return {"latitude": lat, "longitude": lon}


def message(now: datetime) -> list[Example]:
    return [
        Case("english text", ROUTINE, {"text": "Confirming the meeting at 14:00 UTC.", "lang": "en"}),
        Case("russian text, flash", FLASH, {"text": "Подтверждаем получение вашего сообщения.",
                                            "lang": "ru"}),
        Case("default language", PRIORITY, {"text": "Please call back on the secure line."}),
        Bad("empty text", ROUTINE, {"text": ""}, "template.invalid"),
        Bad("unknown field", ROUTINE, {"text": "hello", "colour": "red"}, "template.invalid"),
        Bad("sent by an agent", ROUTINE, {"text": "hello"}, "norm.sender_not_allowed",
            sender_role="agent"),
    ]


def preagreed(now: datetime) -> list[Example]:
    return [
        Case("link test with code word", ROUTINE, {"number": 6, "code": "LINK-TEST"}),
        Case("false alarm, number only", FLASH, {"number": 4}),
        Bad("text instead of number", FLASH, {"number": 4, "text": "false alarm"}, "template.invalid"),
        Bad("number not in the catalogue", FLASH, {"number": 99}, "norm.catalogue"),
        Bad("code word of another message", FLASH, {"number": 1, "code": "LINK-TEST"},
            "norm.catalogue"),
    ]


def risk_assessment(now: datetime) -> list[Example]:
    body = {
        "threat_level": "critical",
        "area": "Northern missile warning sector",
        "assessment": "Early-warning radar reports an unidentified track; we assess it as a "
                      "probable sensor fault, not an attack, pending confirmation.",
        "indicators": ["single radar track, no infrared confirmation", "no launch detected"],
        "recommended_measures": ["hold all forces at current readiness", "exchange sensor data"],
        "valid_from": _at(now), "valid_until": _at(now, hours=6), "lang": "en",
    }
    low = {**body, "threat_level": "low", "indicators": ["routine exercise announced in advance"],
           "valid_until": _at(now, days=7)}
    return [
        Case("critical at FLASH", FLASH, body),
        Case("low at ROUTINE", ROUTINE, low),
        Case("high at FLASH (above the floor)", FLASH, {**body, "threat_level": "high"}),
        Case("with the map of the sector", FLASH, {**body, "annexes": [
            attached("sector map.png", "image/png", b"\x89PNG\r\n\x1a\n the sector" * 300)]}),
        Bad("unknown threat level", FLASH, {**body, "threat_level": "severe"}, "template.invalid"),
        Bad("no indicators", FLASH, {**body, "indicators": []}, "template.invalid"),
        Bad("critical at IMMEDIATE", IMMEDIATE, body, "norm.precedence_too_low"),
        Bad("elevated at ROUTINE", ROUTINE, {**body, "threat_level": "elevated"},
            "norm.precedence_too_low"),
        Bad("expires before it starts", FLASH, {**body, "valid_until": _at(now, hours=-1)},
            "norm.order"),
    ]


def launch_notification(now: datetime) -> list[Example]:
    icbm: dict[str, Any] = {
        "missile_class": "ICBM",
        "launch_platform": "land",
        "window": {"start": _at(now, hours=26), "end": _at(now, hours=30)},
        "launch_area": {"name": "North test range, complex 4", "centre": _point("62.9253", "40.5774")},
        "impact_area": {"name": "Eastern impact area K-7", "centre": _point("57.2683", "160.6575"),
                        "radius": {"value": 40, "unit": "km"}},
        "hazard_warnings": [{"kind": "NOTAM", "reference": "A1234/26"},
                            {"kind": "NAVAREA", "reference": "NAVAREA XIII 112/26"}],
        "lang": "en",
    }
    slbm: dict[str, Any] = {
        "missile_class": "SLBM",
        "launch_platform": "submarine",
        "window": {"start": _at(now, days=3), "end": _at(now, days=3, hours=6)},
        "launch_area": {"name": "Barents Sea"},
        "impact_area": {"name": "Northern impact area", "boundary": [
            _point("68.10", "55.20"), _point("68.10", "56.40"), _point("67.50", "56.40"),
            _point("67.50", "55.20")]},
    }
    return [
        Case("ICBM, circular impact area", IMMEDIATE, icbm),
        Case("SLBM, boundary impact area, flash", FLASH, slbm),
        Bad("latitude out of range", IMMEDIATE,
            {**icbm, "launch_area": {"name": "x", "centre": _point("91.5", "40.0")}}, "template.invalid"),
        Bad("impact area both circle and boundary", IMMEDIATE,
            {**icbm, "impact_area": {**icbm["impact_area"], "boundary": slbm["impact_area"]["boundary"]}},
            "template.invalid"),
        Bad("radius in miles", IMMEDIATE,
            {**icbm, "impact_area": {**icbm["impact_area"], "radius": {"value": 40, "unit": "mi"}}},
            "template.invalid"),
        Bad("two hours notice", IMMEDIATE,
            {**icbm, "window": {"start": _at(now, hours=2), "end": _at(now, hours=4)}},
            "norm.late_notice"),
        Bad("window closes before it opens", IMMEDIATE,
            {**icbm, "window": {"start": _at(now, hours=30), "end": _at(now, hours=26)}}, "norm.order"),
        Bad("routine precedence", ROUTINE, icbm, "norm.precedence_not_allowed"),
    ]


def _query(now: datetime) -> dict[str, Any]:
    return {
        "to": ["south"],
        "concern": "Forces far larger than any notified exercise are concentrated near our border.",
        "activity": "Armoured and artillery units moved by rail from their garrisons; field camps "
                    "and bridging equipment observed.",
        "area": {"name": "Southern border district", "centre": _point("51.50", "36.20"),
                 "radius_km": 80},
        "observed_from": _day(now, -10), "observed_until": _day(now, -1),
        "questions": ["What are the objectives of the activity?",
                      "Which formations take part, and under whose command?",
                      "When will the forces return to their peacetime locations?"],
        "lang": "en",
    }


def unusual_activity_query(now: datetime) -> list[Example]:
    body = _query(now)
    return [
        Case("request to south", PRIORITY, body),
        Case("request to two parties", IMMEDIATE, {**body, "to": ["south", "mediator"]}),
        Bad("nobody addressed", PRIORITY, {**body, "to": []}, "template.invalid"),
        Bad("no questions", PRIORITY, {**body, "questions": []}, "template.invalid"),
        Bad("addressed to a stranger", PRIORITY, {**body, "to": ["west"]}, "norm.audience"),
        Bad("addressed to itself", PRIORITY, {**body, "to": ["north"]}, "norm.audience"),
        Bad("observed backwards", PRIORITY,
            {**body, "observed_from": _day(now, -1), "observed_until": _day(now, -10)}, "norm.order"),
    ]


def unusual_activity_reply(now: datetime) -> list[Example]:
    body = {
        "objectives": "Snap readiness check of the district's ground forces.",
        "location": {"name": "Northern training grounds", "centre": _point("51.80", "36.00"),
                     "radius_km": 60},
        "start_date": _day(now, -10), "end_date": _day(now, 5),
        "personnel": 8500,
        "formations": [{"designation": "4th Motor Rifle Brigade", "subordination": "1st Army",
                        "type": "motor rifle brigade", "count": 1},
                       {"designation": "12th Artillery Regiment", "subordination": "1st Army",
                        "type": "artillery regiment", "count": 1}],
        "equipment": [{"type": "battle tank", "count": 41}, {"type": "artillery piece", "count": 54}],
        "answers": [{"question": 1, "answer": "A readiness check, ordered on short notice."},
                    {"question": 2, "answer": "See formations; all under 1st Army."},
                    {"question": 3, "answer": "By the end date above."}],
        "additional_information": "Observers are invited to visit on day 3.",
        "lang": "en",
    }
    q = "unusual-activity-query"
    return [
        Case("reply to a query", PRIORITY, body, reply_template=q),
        Case("reply: no formations engaged", IMMEDIATE,
             {**body, "formations": [], "equipment": [], "personnel": 0}, reply_template=q),
        Bad("no answers", PRIORITY, {**body, "answers": []}, "template.invalid", reply_template=q),
        Bad("formation without subordination", PRIORITY,
            {**body, "formations": [{"designation": "x", "type": "y", "count": 1}]},
            "template.invalid", reply_template=q),
        Bad("answers nothing", PRIORITY, body, "norm.reply_to"),
        Bad("answers a free-text message", PRIORITY, body, "norm.reply_to", reply_template="message"),
        Bad("ends before it starts", PRIORITY,
            {**body, "start_date": _day(now, 5), "end_date": _day(now, -10)}, "norm.order",
            reply_template=q),
    ]


def incident_at_sea(now: datetime) -> list[Example]:
    body = {
        "time": _at(now, hours=-2),
        "position": _point("43.1050", "34.2100"),
        "units": [{"party": "north", "kind": "surface_ship", "name": "Steadfast", "identifier": "F-231",
                   "course": 270, "speed_knots": 14},
                  {"party": "south", "kind": "aircraft", "name": "maritime patrol aircraft",
                   "identifier": "SX-114"}],
        "closest_approach": {"distance": 150, "unit": "metres"},
        "signals": [{"time": _at(now, hours=-2, minutes=-5), "by": "Steadfast", "means": "vhf_radio",
                     "code": "DESIG", "content": "Identified ourselves and our course."}],
        "prohibited_acts": ["simulated_attack", "aerobatics_over_ships"],
        "narrative": "The aircraft made three low passes over the ship at about 30 m, the last with "
                     "its bomb-bay open and on a collision heading.",
        "request": "explanation",
        "lang": "en",
    }
    return [
        Case("aircraft buzzing a ship", IMMEDIATE, body),
        Case("collision with damage, flash", FLASH,
             {**body, "prohibited_acts": ["dangerous_manoeuvre"], "damage": "Port side hull breach.",
              "casualties": 2, "closest_approach": {"distance": 0, "unit": "yards"},
              "request": "assistance"}),
        Case("with photographs", IMMEDIATE, {**body, "photos": [
            attached("low pass 1.jpg", "image/jpeg", b"\xff\xd8\xff first pass" * 500),
            attached("low pass 2.jpg", "image/jpeg", b"\xff\xd8\xff second pass" * 500)]}),
        Bad("a photograph as an archive", IMMEDIATE, {**body, "photos": [
            {**attached("passes.zip", "image/jpeg", b"PK archive"), "media_type": "application/zip"}]},
            "template.invalid"),
        Bad("distance in feet", IMMEDIATE,
            {**body, "closest_approach": {"distance": 450, "unit": "feet"}}, "template.invalid"),
        Bad("act the agreements do not name", IMMEDIATE,
            {**body, "prohibited_acts": ["shouldering"]}, "template.invalid"),
        Bad("routine precedence", ROUTINE, body, "norm.precedence_not_allowed"),
    ]


def data_exchange(now: datetime) -> list[Example]:
    year = now.year
    forces: dict[str, Any] = {"table": "military_forces", "title": "Land forces", "lines": [
        {"line": 1, "designation": "1st Army", "subordination": "Land Forces Command",
         "location": {"name": "Northgate", "latitude": "59.93", "longitude": "30.31"},
         "personnel": 1200},
        {"line": 2, "designation": "4th Motor Rifle Brigade", "subordination": "1st Army",
         "location": {"name": "Riverton"}, "personnel": 4100,
         "equipment": [{"type": "battle tank", "count": 41},
                       {"type": "armoured combat vehicle", "count": 120}]},
        {"line": 3, "designation": "12th Artillery Regiment", "subordination": "1st Army",
         "location": {"name": "Hillford"}, "personnel": 1500,
         "equipment": [{"type": "artillery piece", "count": 54}]},
    ]}
    weapons: dict[str, Any] = {"table": "weapon_and_equipment_data", "lines": [
        {"line": 1, "designation": "T-90 battle tank", "remarks": "Photographs provided separately."},
    ]}
    annual = {"party": "north", "exchange_type": "annual", "exchange_date": f"{year}-12-10",
              "effective_date": f"{year + 1}-01-01", "tables": [forces, weapons], "lang": "en"}
    change = {"party": "north", "exchange_type": "change", "exchange_date": _day(now, 0),
              "effective_date": _day(now, -2), "amends": "AAAAAAAAAAAAAAAAAAAAAA",
              "tables": [{"table": "military_forces", "lines": [
                  {"line": 1, "change": "changed", "designation": "4th Motor Rifle Brigade",
                   "location": {"name": "Lakeside"}}]}]}
    gap = {**forces, "lines": [forces["lines"][0], {**forces["lines"][2], "line": 3}]}
    return [
        Case("annual exchange", ROUTINE, annual),
        Case("change notification", PRIORITY, change),
        Case("annual exchange with its tables as a spreadsheet", ROUTINE, {**annual, "data_files": [
            attached("holdings.csv", "text/csv", b"line,designation,personnel\n1,1st Army,1200\n")]}),
        Bad("impossible effective date", ROUTINE, {**annual, "effective_date": f"{year + 1}-13-01"},
            "template.invalid"),
        Bad("line without designation", ROUTINE,
            {**annual, "tables": [{"table": "military_forces", "lines": [{"line": 1}]}]},
            "template.invalid"),
        Bad("line numbers with a gap", ROUTINE, {**annual, "tables": [gap]}, "norm.sequence"),
        Bad("second table starts at 2", ROUTINE,
            {**annual, "tables": [forces, {**weapons, "lines": [{**weapons["lines"][0], "line": 2}]}]},
            "norm.sequence"),
        Bad("flash precedence", FLASH, annual, "norm.precedence_not_allowed"),
    ]


def consultation_request(now: datetime) -> list[Example]:
    body = {
        "subject": "The incident between our units on the high seas yesterday.",
        "requested_level": "minister",
        "requesting_official": "Minister of Defence",
        "mode": "video",
        "proposed_times": [_at(now, hours=6), _at(now, days=1)],
        "duration_minutes": 30,
        "urgency": "urgent",
        "lang": "en",
    }
    return [
        Case("minister-level video call", PRIORITY, body),
        Case("duty officers, routine", ROUTINE,
             {"subject": "Technical test of the link.", "requested_level": "duty_officer",
              "proposed_times": [_at(now, days=2)], "urgency": "routine"}),
        Bad("unknown urgency", PRIORITY, {**body, "urgency": "asap"}, "template.invalid"),
        Bad("no proposed time", PRIORITY, {**body, "proposed_times": []}, "template.invalid"),
        Bad("proposed time in the past", PRIORITY,
            {**body, "proposed_times": [_at(now, hours=6), _at(now, hours=-1)]}, "norm.late_notice"),
    ]


def humanitarian_notice(now: datetime) -> list[Example]:
    rescue = {
        "category": "search_and_rescue", "nature": "request",
        "location": {"name": "Sea area 20 nmi east of Cape North", "latitude": "44.512",
                     "longitude": "33.950", "radius_km": 15},
        "window": {"start": _at(now, minutes=30), "end": _at(now, hours=12)},
        "persons": 14,
        "means": "Rescue vessel Aurora, red cross on hull and funnel; one helicopter.",
        "intermediary": "icrc",
        "details": "Request a pause in operations in the area so that our rescue vessel can search "
                   "for the crew of the sunken patrol boat.",
        "contact": "Aurora, VHF channel 16",
        "lang": "en",
    }
    detained = {
        "category": "detained_persons", "nature": "notification",
        "location": {"name": "Holding facility, Riverton"},
        "persons": 3,
        "details": "Three crew members of the downed aircraft are held, unharmed; names and "
                   "service numbers are being passed to the ICRC.",
        "intermediary": "icrc",
    }
    return [
        Case("search and rescue, flash", FLASH, rescue),
        Case("detained persons, routine", ROUTINE, detained),
        Case("corridor request", PRIORITY,
             {"category": "evacuation_corridor", "nature": "request",
              "location": {"name": "Old town, besieged district"}, "route": "Old town - bridge - Eastfield",
              "window": {"start": _at(now, hours=2), "end": _at(now, hours=8)}, "persons": 400,
              "details": "Evacuation of wounded, elderly people and children by 10 marked buses."}),
        Case("detained persons, with the list of names", ROUTINE, {**detained, "documents": [
            attached("detained.pdf", "application/pdf", b"%PDF-1.7 three names" * 100)]}),
        Bad("a file name that is a path", ROUTINE, {**detained, "documents": [
            {**attached("detained.pdf", "application/pdf", b"%PDF-1.7 three names" * 100),
             "name": "../../detained.pdf"}]}, "template.invalid"),
        Bad("category outside the conventions", IMMEDIATE, {**rescue, "category": "ceasefire"},
            "template.invalid"),
        Bad("blank details", IMMEDIATE, {**rescue, "details": "   "}, "template.invalid"),
        Bad("window ends before it starts", IMMEDIATE,
            {**rescue, "window": {"start": _at(now, hours=12), "end": _at(now, minutes=30)}},
            "norm.order"),
    ]


def heartbeat(now: datetime) -> list[Example]:
    return [
        Case("first heartbeat", ROUTINE, {"seq": 0, "sent": _at(now)}),
        Case("later heartbeat", ROUTINE, {"seq": 41, "sent": _at(now)}),
        Bad("negative counter", ROUTINE, {"seq": -1, "sent": _at(now)}, "template.invalid"),
        Bad("flash heartbeat", FLASH, {"seq": 1, "sent": _at(now)}, "norm.precedence_not_allowed"),
    ]


def echo(now: datetime) -> list[Example]:
    return [
        Case("echo of a heartbeat", ROUTINE, {"received": _at(now)}, reply_template="heartbeat"),
        Bad("no arrival time", ROUTINE, {}, "template.invalid", reply_template="heartbeat"),
        Bad("arrival time without zone", ROUTINE, {"received": "2026-01-01T00:00:00"},
            "template.invalid", reply_template="heartbeat"),
        Bad("immediate echo", IMMEDIATE, {"received": _at(now)}, "norm.precedence_not_allowed",
            reply_template="heartbeat"),
    ]


EXAMPLES: dict[str, Callable[[datetime], list[Example]]] = {
    "message": message,
    "preagreed": preagreed,
    "risk-assessment": risk_assessment,
    "launch-notification": launch_notification,
    "unusual-activity-query": unusual_activity_query,
    "unusual-activity-reply": unusual_activity_reply,
    "incident-at-sea": incident_at_sea,
    "data-exchange": data_exchange,
    "consultation-request": consultation_request,
    "humanitarian-notice": humanitarian_notice,
    "heartbeat": heartbeat,
    "echo": echo,
}
