"""The web glue both interfaces share: security headers and quiet logs, the request's instance
and database session, error pages, the language switch, the base layout and style sheet.

It sits between the interfaces and the domain: ``source_iface`` and ``journalist_iface`` import
it, it imports ``wbs`` and Flask, and the domain never imports it (``make lint`` enforces the
layers). Texts shown to people stay in each interface, where its translations are extracted.
"""
