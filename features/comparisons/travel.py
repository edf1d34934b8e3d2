"""Travel evidence and the embedding cosine.

Two mentions in one booking are either one person twice (the holder who is also a guest) or
companions (co-passengers are usually different people); the roles let the model tell these
apart. Every mention belongs to one object, so it has at most one booking reference. A booking's
contact (an air booking's contact block, a hotel booking's holder's email and phone) belongs to
whoever booked it, usually one of its travellers: a passenger with nothing but a name is tied to
the guest profile that holds the contact, and a family member travelling on a trip another member
booked is tied to the profiles at the booker's home (`booked_from_home`), and two trips booked
from one home, whatever contact each was booked from, are one household's (`same_booker_home`).
"""

from __future__ import annotations

import numpy as np

from features.comparisons.base import ROLES, Features, PairData, where_both

HOLDER, GUEST, PASSENGER = (ROLES.index(r) for r in ("holder", "guest", "passenger"))


class TravelComparison:
    name = "travel"
    string_scorings = 0

    def to_features(self, pairs: PairData) -> Features:
        ref, role = pairs.arrays.ints["ref"], pairs.arrays.ints["role"]
        objects = pairs.arrays.ints["object_pk"]
        shared = (ref[pairs.ia] >= 0) & (ref[pairs.ia] == ref[pairs.ib])
        ra, rb = role[pairs.ia], role[pairs.ib]
        holder_guest = shared & (((ra == HOLDER) & (rb == GUEST)) | ((ra == GUEST) & (rb == HOLDER)))
        companions = shared & (((ra == GUEST) & (rb == GUEST)) | ((ra == PASSENGER) & (rb == PASSENGER)))
        # Who booked: a passenger whose booking's contact is the other mention's own email or
        # phone, either way round (NaN where neither side has a booking contact to hold against
        # the other's contacts); two bookings made from one contact (NaN unless both have one).
        own_a, own_b = pairs.has("own_contacts")
        booked_a, booked_b = pairs.has("booking_contacts")
        booker = pairs.crossed("booking_contacts", "own_contacts")
        # Booked from home: one mention travels on a booking made from the contact of someone
        # living at the other's address (NaN unless one side has such a home and the other an
        # address).
        homes_a, homes_b = pairs.has("booker_homes")
        home_a, home_b = pairs.has("own_home")
        from_home = pairs.crossed("booker_homes", "own_home")
        # Booked from one home: both travel on bookings made from contacts of people living at one
        # address (a family booking its trips from a parent's email one time, another's phone the
        # next): the guest and the passenger of one name are then one member of that household.
        # NaN unless both sides have such a home.
        one_home = pairs.shared("booker_homes") > 0
        return {
            "booker_contact_eq": where_both((booked_a & own_b) | (booked_b & own_a), booker),
            "booked_from_home": where_both((homes_a & home_b) | (homes_b & home_a), from_home),
            "same_booker": where_both(booked_a & booked_b, pairs.shared("booking_contacts") > 0),
            "same_booker_home": where_both(homes_a & homes_b, one_home),
            "shared_booking": shared.astype(np.float32),
            "holder_and_guest": holder_guest.astype(np.float32),
            "travelled_together": companions.astype(np.float32),
            "same_object": (objects[pairs.ia] == objects[pairs.ib]).astype(np.float32),
        }


class EmbeddingComparison:
    name = "embedding"
    string_scorings = 0

    def to_features(self, pairs: PairData) -> Features:
        return {"embedding_cosine": np.asarray(pairs.cosine, dtype=np.float32)}
