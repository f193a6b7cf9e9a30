"""Federation: separate installations (members) linked to a hub (KPK) over onion services.

:mod:`.peers` joins, revokes and leaves (the offline exchange); :mod:`.wire` is the signed
envelope; :mod:`.exchange` the exactly-once, ordered exchange of messages; :mod:`.metadata`
what travels and how it is applied; :mod:`.transport` how a member reaches its hub (tor's
SOCKS port); :mod:`.status` what an operator sees of the link. ``docs/federation.md`` tells
the whole story.
"""
