"""The generator: true persons first, then the records sources keep of them.

What varies, as in real travel data: typos (about `typo_rate` of names), nicknames
(`nickname_rate`), PNR names (`GARCIA LOPEZ/ANA MARIA MRS`, ASCII upper case), dropped accents,
phone formats (E.164, national, `00` prefix, spaced), email case and `+tags`, moves (an old and a
new address), household members sharing an address, a landline and sometimes an email,
common-name collisions (names are drawn with Zipf weights from short lists), missing dates of
birth, day/month swaps, re-delivered objects with a newer `modified_at`, and optional bad lines.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import phonenumbers
from unidecode import unidecode

from features.normalize.names import _nickname_table
from pipelines.synthetic.locales import AIRPORTS, COMPANY_DOMAINS, HOTEL_CODES, LOCALES, Locale

EPOCH = dt.datetime(2023, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True)
class GeneratorConfig:
    persons: int = 1000
    seed: int = 7
    household_rate: float = 0.3
    typo_rate: float = 0.08
    nickname_rate: float = 0.15
    update_rate: float = 0.03
    bad_line_rate: float = 0.0


@dataclass
class TruePerson:
    pid: str
    loc: Locale
    gender: str
    first: str
    last: str
    dob: dt.date
    emails: list[str]
    mobile: str
    addresses: list[dict[str, str]]
    home_phone: str | None = None
    hotel_loyalty: str | None = None
    air_loyalty: str | None = None
    passport: str | None = None
    company: str | None = None
    household: list[TruePerson] = field(default_factory=list)


class _Gen:
    def __init__(self, cfg: GeneratorConfig) -> None:
        self.cfg = cfg
        self.rnd = random.Random(cfg.seed)
        self.nicknames: dict[str, list[str]] = {}
        for nick, canon in _nickname_table().items():
            for c in canon:
                if nick != c:
                    self.nicknames.setdefault(c, []).append(nick)
        self.counter = 0

    # -- small helpers -------------------------------------------------------------------
    def zipf(self, items: tuple[str, ...]) -> str:
        weights = [1 / (i + 1) for i in range(len(items))]
        return self.rnd.choices(items, weights)[0]

    def digits(self, n: int) -> str:
        return "".join(self.rnd.choice("0123456789") for _ in range(n))

    def pattern(self, pat: str) -> str:
        return "".join(
            self.rnd.choice("0123456789")
            if c == "9"
            else self.rnd.choice("ABCDEFGHJKLMNPRSTUWXYZ")
            if c == "A"
            else c
            for c in pat
        )

    def phone(self, region: str, kind: Any = phonenumbers.PhoneNumberType.MOBILE) -> str:
        example = phonenumbers.example_number_for_type(region, kind)
        assert example is not None, f"phonenumbers has no example number for {region}"
        national = str(example.national_number)
        for _ in range(20):
            candidate = national[:3] + self.digits(len(national) - 3)
            parsed = phonenumbers.parse(candidate, region)
            if phonenumbers.is_valid_number(parsed):
                return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
        return phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)

    def typo(self, text: str) -> str:
        if len(text) < 4:
            return text
        i = self.rnd.randrange(1, len(text) - 1)
        op = self.rnd.randrange(4)
        letter = self.rnd.choice("abcdefghijklmnopqrstuvwxyz")
        if op == 0:
            return text[:i] + text[i + 1 :]
        if op == 1:
            return text[:i] + letter + text[i:]
        if op == 2:
            return text[:i] + letter + text[i + 1 :]
        return text[:i] + text[i + 1] + text[i] + text[i + 2 :]

    def when(self, days: int = 700) -> dt.datetime:
        return EPOCH + dt.timedelta(seconds=self.rnd.randrange(days * 86400))

    # -- true persons --------------------------------------------------------------------
    def person(
        self, pid: str, loc: Locale | None = None, last: str | None = None, adult: bool = True
    ) -> TruePerson:
        rnd = self.rnd
        loc = loc or rnd.choices(LOCALES, [x.weight for x in LOCALES])[0]
        gender = rnd.choice("FM")
        first = self.zipf(loc.female if gender == "F" else loc.male)
        if last is None:
            last = self.zipf(loc.surnames)
            if loc.double_surname and rnd.random() < 0.6:
                last = f"{last} {self.zipf(loc.surnames)}"
        start = dt.date(1940, 1, 1) if adult else dt.date(2006, 1, 1)
        span = (dt.date(2003, 12, 31) if adult else dt.date(2018, 12, 31)) - start
        dob = start + dt.timedelta(days=rnd.randrange(span.days))
        user = unidecode(f"{first.split()[0]}.{last.split()[-1]}").lower().replace("'", "")
        style = rnd.randrange(3)
        local = (
            user
            if style == 0
            else user.replace(".", "") + str(dob.year % 100)
            if style == 1
            else (user[0] + user.split(".")[-1] + self.digits(2))
        )
        emails = [f"{local}@{rnd.choice(loc.email_domains)}"]
        if rnd.random() < 0.25:  # a second, newer address
            emails.append(f"{user.replace('.', '_')}{self.digits(3)}@{rnd.choice(loc.email_domains)}")
        city, postal = rnd.choice(loc.cities)
        addresses = [
            {
                "line1": f"{rnd.choice(loc.streets)} {rnd.randrange(1, 200)}",
                "city": city,
                "postal_code": self.pattern(postal),
                "country": loc.country,
            }
        ]
        if rnd.random() < 0.15:  # moved house
            city, postal = rnd.choice(loc.cities)
            addresses.append(
                {
                    "line1": f"{rnd.choice(loc.streets)} {rnd.randrange(1, 200)}",
                    "city": city,
                    "postal_code": self.pattern(postal),
                    "country": loc.country,
                }
            )
        p = TruePerson(pid, loc, gender, first, last, dob, emails, self.phone(loc.country), addresses)
        p.hotel_loyalty = f"SR{self.digits(8)}" if rnd.random() < 0.55 else None
        p.air_loyalty = f"FF-{self.digits(7)}" if rnd.random() < 0.45 else None
        p.passport = f"{loc.country}{self.pattern('A9999999')}" if adult and rnd.random() < 0.5 else None
        p.company = rnd.choice(COMPANY_DOMAINS) if adult and rnd.random() < 0.2 else None
        return p

    def population(self) -> list[TruePerson]:
        people: list[TruePerson] = []
        while len(people) < self.cfg.persons:
            head = self.person(f"P{len(people) + 1:07d}")
            people.append(head)
            if self.rnd.random() < self.cfg.household_rate and len(people) < self.cfg.persons:
                members = [head]
                shared_last = head.last if not head.loc.double_surname else head.last.split()[0]
                for i in range(self.rnd.randrange(1, 4)):
                    if len(people) >= self.cfg.persons:
                        break
                    adult = i == 0
                    last = head.last if (adult and self.rnd.random() < 0.7) else shared_last
                    m = self.person(
                        f"P{len(people) + 1:07d}", head.loc, last if not adult or last else None, adult
                    )
                    m.addresses = [dict(head.addresses[-1])]
                    people.append(m)
                    members.append(m)
                home = self.phone(head.loc.country, phonenumbers.PhoneNumberType.FIXED_LINE)
                family_email = None
                if self.rnd.random() < 0.3:
                    family_email = f"{unidecode(shared_last).lower().replace(' ', '')}.family@gmail.com"
                for m in members:
                    m.home_phone = home
                    m.household = [x for x in members if x is not m]
                    if family_email:
                        m.emails.append(family_email)
        return people

    # -- how sources render a person -----------------------------------------------------------
    def first_name(self, p: TruePerson) -> str:
        name = p.first
        options = self.nicknames.get(unidecode(name.split()[0]).lower())
        if options and self.rnd.random() < self.cfg.nickname_rate:
            name = self.rnd.choice(options).capitalize()
        if self.rnd.random() < self.cfg.typo_rate:
            name = self.typo(name)
        return name

    def last_name(self, p: TruePerson) -> str:
        name = p.last
        if p.loc.double_surname and " " in name and self.rnd.random() < 0.3:
            name = name.split()[0]  # the second surname dropped, as many forms do
        if self.rnd.random() < self.cfg.typo_rate:
            name = self.typo(name)
        return name

    def phone_text(self, e164: str) -> dict[str, str]:
        parsed = phonenumbers.parse(e164)
        region = phonenumbers.region_code_for_number(parsed) or ""
        style = self.rnd.randrange(5)
        if style == 0:
            return {"number": e164}
        if style == 1:
            return {
                "number": phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
            }
        if style == 2:
            return {"number": "00" + e164[1:]}
        national = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)
        if style == 3:
            return {"number": national, "country_code": region}
        return {"number": national}  # the source's or the person's country must fill in

    def email(self, p: TruePerson) -> dict[str, str]:
        address = self.rnd.choice(p.emails)
        if self.rnd.random() < 0.2:
            address = address.title()
        if self.rnd.random() < 0.1:
            local, _, domain = address.partition("@")
            address = f"{local}+travel@{domain}"
        return {"address": address}

    def dob(self, p: TruePerson, share: float) -> str | None:
        if self.rnd.random() > share:
            return None
        d = p.dob
        if d.day <= 12 and self.rnd.random() < 0.02:
            d = dt.date(d.year, d.day, d.month)
        return d.isoformat()

    def render(self, p: TruePerson, style: str) -> dict[str, Any]:
        rnd = self.rnd
        out: dict[str, Any] = {}
        if style in ("pms", "guest"):
            first = self.first_name(p)
            out["first_name"] = first if rnd.random() < 0.8 else unidecode(first)
            out["last_name"] = self.last_name(p) if rnd.random() < 0.8 else unidecode(self.last_name(p))
        elif style in ("pss", "pax"):
            title = "MR" if p.gender == "M" else rnd.choice(["MRS", "MS"])
            if p.dob.year > 2010:
                title = "MSTR" if p.gender == "M" else "MISS"
            given = unidecode(self.first_name(p)).upper()
            out["full_name"] = f"{unidecode(self.last_name(p)).upper()}/{given} {title}"
        elif style == "call":
            out["full_name"] = f"{self.first_name(p)} {self.last_name(p)}"
        if style == "pms":
            out["date_of_birth"] = self.dob(p, 0.6)
            out["emails"] = [self.email(p)]
            out["phones"] = [self.phone_text(p.mobile)]
            if p.home_phone and rnd.random() < 0.3:
                out["phones"].append(self.phone_text(p.home_phone))
            out["addresses"] = [dict(rnd.choice(p.addresses))]
            if p.hotel_loyalty and rnd.random() < 0.8:
                out["loyalty"] = [{"program": "stayrewards", "id": p.hotel_loyalty}]
            if p.company and rnd.random() < 0.5:
                out["company"] = p.company.split(".")[0].replace("-", " ").title()
        elif style == "pss":
            out["date_of_birth"] = self.dob(p, 0.8)
            out["gender"] = p.gender
            out["phones"] = [self.phone_text(p.mobile)]
            if p.air_loyalty:
                out["loyalty"] = [{"program": "skymiles-demo", "id": p.air_loyalty}]
            if p.passport:
                out["documents"] = [{"type": "passport", "number": p.passport, "country": p.loc.country}]
        elif style == "guest":
            if rnd.random() < 0.3:
                out["date_of_birth"] = self.dob(p, 1.0)
        elif style == "pax":
            out["date_of_birth"] = self.dob(p, 0.3)
            if p.air_loyalty and rnd.random() < 0.6:
                out["loyalty"] = [{"program": "skymiles-demo", "id": p.air_loyalty}]
        elif style == "holder":
            out = self.render(p, "guest")
            out["emails"] = [self.email(p)]
            out["phones"] = [self.phone_text(p.mobile)]
        elif style == "web":
            choice = rnd.random()
            if choice < 0.6:
                out["emails"] = [self.email(p)]
            elif choice < 0.8 and p.hotel_loyalty:
                out["loyalty"] = [{"program": "stayrewards", "id": p.hotel_loyalty}]
        elif style == "call":
            out["phones"] = [self.phone_text(rnd.choice([p.mobile, p.home_phone or p.mobile]))]
        return {k: v for k, v in out.items() if v}

    # -- objects ------------------------------------------------------------------------------
    def envelope(self, object_type: str, source: str, prefix: str, data: dict[str, Any]) -> dict[str, Any]:
        self.counter += 1
        return {
            "object_type": object_type,
            "source": source,
            "id": f"{prefix}-{self.counter:08d}",
            "modified_at": self.when().isoformat().replace("+00:00", "Z"),
            "data": data,
        }

    def objects_of(self, p: TruePerson) -> Iterator[tuple[dict[str, Any], dict[str, str]]]:
        """Objects centred on `p`, each with {mention path: person id} for its people."""
        rnd = self.rnd
        amer = p.loc.country in ("US", "MX")
        pms = "opera-pms-amer" if amer else "opera-pms-emea"
        yield (
            self.envelope("guest_profile", pms, "G", {"traveller": self.render(p, "pms")}),
            {"traveller": p.pid},
        )
        if rnd.random() < 0.3:
            other = "opera-pms-emea" if amer else "opera-pms-amer"
            yield (
                self.envelope("guest_profile", other, "G", {"traveller": self.render(p, "pms")}),
                {"traveller": p.pid},
            )
        if rnd.random() < 0.5:
            yield (
                self.envelope("pax_profile", "pss-airline", "P", {"traveller": self.render(p, "pss")}),
                {"traveller": p.pid},
            )
        for _ in range(min(4, int(rnd.expovariate(1 / 1.2)))):
            party = [p] + [m for m in p.household if rnd.random() < 0.6]
            check_in = (EPOCH + dt.timedelta(days=rnd.randrange(700))).date()
            data: dict[str, Any] = {
                "hotel_code": rnd.choice(HOTEL_CODES),
                "check_in": check_in.isoformat(),
                "check_out": (check_in + dt.timedelta(days=rnd.randrange(1, 8))).isoformat(),
                "status": rnd.choice(["confirmed", "checked_out", "checked_out", "cancelled", "no_show"]),
                "channel": rnd.choice(["web", "ota", "phone", "walk_in"]),
                "holder": self.render(p, "holder"),
                "guests": [self.render(m, "guest") for m in party],
            }
            truth = {"holder": p.pid} | {f"guests[{i}]": m.pid for i, m in enumerate(party)}
            yield self.envelope("hotel_booking", pms, "HB", data), truth
        for _ in range(min(4, int(rnd.expovariate(1 / 1.0)))):
            party = [p] + [m for m in p.household if rnd.random() < 0.5]
            origin, dest = rnd.sample(AIRPORTS, 2)
            pnr = "".join(rnd.choice("ABCDEFGHJKLMNPQRSTUVWXYZ23456789") for _ in range(6))
            depart = self.when()
            data = {
                "pnr": pnr,
                "status": rnd.choice(["ticketed", "ticketed", "cancelled", "flown"]),
                "segments": [
                    {
                        "origin": origin,
                        "destination": dest,
                        "departure": depart.isoformat(),
                        "flight_number": f"DM{rnd.randrange(100, 999)}",
                        "cabin": "economy",
                    }
                ],
                "passengers": [self.render(m, "pax") for m in party],
                "contact": {"emails": [self.email(p)], "phones": [self.phone_text(p.mobile)]},
            }
            yield (
                self.envelope("air_booking", "pss-airline", "PNR", data),
                {f"passengers[{i}]": m.pid for i, m in enumerate(party)},
            )
        for _ in range(min(4, int(rnd.expovariate(1 / 1.0)))):
            at = self.when()
            data = {
                "session_id": self.digits(10),
                "events": [{"type": "search", "at": at.isoformat(), "url": "/hotels"}],
                "user": self.render(p, "web"),
                "device": rnd.choice(["mobile", "desktop", "tablet"]),
            }
            yield self.envelope("clickstream", "web", "S", data), {"user": p.pid}
        for _ in range(min(3, int(rnd.expovariate(1 / 0.5)))):
            data = {
                "channel": rnd.choice(["voice", "chat", "email"]),
                "started_at": self.when().isoformat(),
                "duration_s": rnd.randrange(30, 1800),
                "customer": self.render(p, "call"),
                "topic": rnd.choice(["change dates", "refund", "loyalty points", "complaint"]),
                "sentiment": round(rnd.uniform(-1, 1), 2),
            }
            yield (
                self.envelope("customer_service_interaction", "contact-centre", "CSI", data),
                {"customer": p.pid},
            )

    def bad_line(self, obj: dict[str, Any]) -> str:
        broken = json.loads(json.dumps(obj))
        kind = self.rnd.randrange(4)
        if kind == 0:
            broken["modified_at"] = "last tuesday"
        elif kind == 1:
            broken["object_type"] = "car_rental"
        elif kind == 2:
            broken["source"] = "bad source/.."
        else:
            return json.dumps(broken, ensure_ascii=False)[:-7]
        return json.dumps(broken, ensure_ascii=False)


def _matchable(person: dict[str, Any]) -> bool:
    return any(
        person.get(k)
        for k in ("first_name", "last_name", "full_name", "emails", "phones", "loyalty", "documents")
    )


def _person_at(data: dict[str, Any], path: str) -> dict[str, Any]:
    name, _, index = path.partition("[")
    value = data[name]
    return value[int(index.rstrip("]"))] if index else value


def generate(cfg: GeneratorConfig) -> Iterator[tuple[str, list[tuple[str, str]]]]:
    """JSON lines with the (mention key, person id) pairs of their matchable people."""
    gen = _Gen(cfg)
    for p in gen.population():
        for obj, truth in gen.objects_of(p):
            if gen.rnd.random() < cfg.bad_line_rate:
                yield gen.bad_line(obj), []
                continue
            key = f"{obj['source']}/{obj['object_type']}/{obj['id']}"
            rows = [
                (f"{key}#{path}", pid)
                for path, pid in truth.items()
                if _matchable(_person_at(obj["data"], path))
            ]
            yield json.dumps(obj, ensure_ascii=False), rows
            if gen.rnd.random() < cfg.update_rate:
                newer = dict(
                    obj,
                    modified_at=(
                        dt.datetime.fromisoformat(obj["modified_at"]) + dt.timedelta(days=30)
                    ).isoformat(),
                )
                yield json.dumps(newer, ensure_ascii=False), rows


def write_dataset(cfg: GeneratorConfig, out_dir: Path, compress: bool = False) -> dict[str, Any]:
    """Write `objects.jsonl[.gz]` and `truth.csv` (`mention_key,person_id`) into `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / ("objects.jsonl.gz" if compress else "objects.jsonl")
    truth: dict[str, str] = {}
    lines = 0
    opener = gzip.open if compress else open
    with opener(path, "wt", encoding="utf-8") as f:
        for line, rows in generate(cfg):
            f.write(line + "\n")
            lines += 1
            truth.update(rows)
    with (out_dir / "truth.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["mention_key", "person_id"])
        w.writerows(sorted(truth.items()))
    return {
        "objects_file": str(path),
        "lines": lines,
        "mentions_in_truth": len(truth),
        "persons": len(set(truth.values())),
        "truth_file": str(out_dir / "truth.csv"),
    }
