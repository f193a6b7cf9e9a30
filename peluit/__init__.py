"""Peluit assembled: the composition root.

The one package that knows every other: the operator's command line (``peluit``), the
development run that serves both interfaces on loopback with a private tor, and the demo
tenants and keys. Nothing imports this package (``make lint`` enforces it), so the domain
(``wbs``, ``crypto``) and the interfaces never depend on how they are put together.
"""
