"""The database model: SQLAlchemy 2 typed mappings shared by both interfaces.

What the server keeps is metadata and the paths of ciphertext files, never a plaintext report,
file or reply, and nothing that identifies a pelapor: no IP address, no user agent, no codename.
A source is known only by an id derived from its codename (see :mod:`crypto.kdf`), and every
source-side time is stored rounded to the day, because a precise time can be matched against
network logs to find who was connected at that moment.

The schema is built by the Alembic migrations in ``wbs/migrations`` (see :func:`wbs.db.upgrade`),
never by ``metadata.create_all``; a test checks the migrations produce exactly these models.

Tenant isolation is layered: every tenant-owned row carries ``tenant_id`` (:class:`TenantOwned`),
reads go through :mod:`wbs.tenancy`, and references between tenant-owned rows are composite
foreign keys ``(x_id, tenant_id)``, so the database itself refuses a submission attached to
another tenant's case or a case assigned to another tenant's investigator.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    Mapper,
    ORMExecuteState,
    Session,
    declared_attr,
    foreign,
    mapped_column,
    relationship,
    validates,
)

from crypto.padding import FRAMING_NONE, FRAMINGS
from wbs.domain import (
    DEFAULT_CATEGORY_CODES,
    SOURCE_EVENT_KINDS,
    CaseStatus,
    Channel,
    EventKind,
    KpkSharing,
    Role,
    SubmissionKind,
    TenantKind,
    format_registration_number,
)
from wbs.workdays import local_date

# Stable constraint names on both dialects, so migrations can name what they alter or drop.
NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

_HEX40 = re.compile(r"[0-9A-F]{40}")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


class AppendOnlyError(RuntimeError):
    """Raised on an attempt to change or remove an entry of the append-only event log."""


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def round_to_day(value: dt.datetime) -> dt.datetime:
    """The value's calendar day in WIB, as midnight UTC of that date: the precision kept for
    source-side times.

    The day is WIB's, not UTC's: a report sent at 00:30 WIB on 3 December was received on
    3 December, and its deadlines count from that date. Rounding to the UTC day would file it
    under 2 December (UTC is seven hours behind), so the receipt and the deadline would
    disagree. Midnight UTC is only the label that stores a date in a datetime column; read it
    back with ``.date()`` in UTC, never converted to WIB (that would invent 07:00).
    """
    day = local_date(value)
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


def utc_today_start() -> dt.datetime:
    return round_to_day(utcnow())


class UTCDateTime(sa.TypeDecorator[dt.datetime]):
    """A timezone-aware UTC datetime on every dialect.

    PostgreSQL keeps the zone (``timestamptz``); SQLite has no zone type, so the value is stored
    as naive UTC and given back its zone on the way out. Naive datetimes are refused on the way
    in: guessing their zone is how times silently shift by seven hours (WIB).
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("naive datetime: pass a timezone-aware value (UTC)")
        value = value.astimezone(dt.UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(
        self, value: dt.datetime | None, dialect: Dialect
    ) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


class UTCDay(UTCDateTime):
    """A source-side time: stored as its WIB day (:func:`round_to_day`), whatever is passed.

    Rounding in the column type makes the rule structural: no code path can store a precise
    time of a pelapor's visit in these columns. Query parameters compared with these columns are
    rounded down the same way, which matches what is stored (``received_at >= t`` means "on or
    after t's day").
    """

    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is not None and value.tzinfo is not None:
            value = round_to_day(value)
        return super().process_bind_param(value, dialect)


def _day(_self: object, _key: str, value: dt.datetime | None) -> dt.datetime | None:
    # Round in memory too, so an object read back in the same session (expire_on_commit is off)
    # shows what was stored, not the precise time the column refused to keep.
    if value is not None and value.tzinfo is not None:
        return round_to_day(value)
    return value


def _framing(_self: object, _key: str, value: str) -> str:
    # What the readers (the workstation, the pelapor's reply page) strip: a value they do not
    # know would leave them guessing, so it never reaches the database.
    if value not in FRAMINGS:
        raise ValueError(f"unknown framing {value!r}")
    return value


def _str_enum(enum_cls: type[Any], name: str, *, check: bool = True) -> sa.Enum:
    # Stored as VARCHAR with the enum's values (not member names) on both dialects; a CHECK
    # constraint keeps stray values out. Native PostgreSQL enums are avoided: altering them
    # inside a migration transaction is awkward and SQLite has none.
    return sa.Enum(
        enum_cls,
        name=name,
        native_enum=False,
        create_constraint=check,
        length=32,
        validate_strings=True,
        values_callable=lambda cls: [member.value for member in cls],
    )


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)
    # Every plain datetime column is aware UTC; source-side columns opt into UTCDay explicitly.
    type_annotation_map: ClassVar[dict[Any, Any]] = {dt.datetime: UTCDateTime()}


class TenantOwned:
    """Mixin for every row that belongs to one instansi.

    :mod:`wbs.tenancy` refuses to query a model without it, and adds ``tenant_id`` to every
    query of a model with it. Removing a tenant removes its rows, except where a model sets
    ``_tenant_ondelete`` to None (the event log), which then makes the removal fail.
    """

    _tenant_ondelete: str | None = "CASCADE"

    @declared_attr
    def tenant_id(cls) -> Mapped[int]:
        return mapped_column(
            sa.ForeignKey("tenants.id", ondelete=cls._tenant_ondelete), nullable=False, index=True
        )


class Tenant(Base):
    """An instansi connected to the system; the one with ``is_hub`` is KPK."""

    __tablename__ = "tenants"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(sa.String(40), unique=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    kind: Mapped[TenantKind] = mapped_column(_str_enum(TenantKind, "tenant_kind"))
    province: Mapped[str | None] = mapped_column(sa.String(100))
    is_hub: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    # Working days (hari kerja) for the first response to the pelapor; LKPP uses 3.
    first_response_days: Mapped[int] = mapped_column(default=7, server_default=sa.text("7"))
    # Codes from wbs.domain.DEFAULT_CATEGORIES that this instansi offers, in display order.
    categories: Mapped[list[str]] = mapped_column(
        sa.JSON, default=lambda: list(DEFAULT_CATEGORY_CODES)
    )
    kpk_sharing: Mapped[KpkSharing] = mapped_column(
        _str_enum(KpkSharing, "kpk_sharing"), default=KpkSharing.OPTIONAL
    )
    # None: the deployment's Config.max_upload_bytes applies.
    max_upload_bytes: Mapped[int | None] = mapped_column(sa.BigInteger)
    onion_address: Mapped[str | None] = mapped_column(sa.String(100), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # On a hub: the federation member whose installation runs this instansi (a mirror: its
    # handling metadata arrives over the federation link, wbs.federation). None: a tenant of
    # this installation. A mirror has no accounts, keys, onion or drop box here. No foreign
    # key (migration 0022): peers are never deleted, only revoked.
    federation_peer_id: Mapped[int | None] = mapped_column(index=True)
    # On KPK's hub: a mirror of an instansi behind a regional hub (a member that passes its own
    # members' data on). KPK monitors it; its cases are not handled across installations.
    federation_relayed: Mapped[bool] = mapped_column(default=False, server_default=sa.false())

    __table_args__ = (
        sa.CheckConstraint("first_response_days > 0", name="first_response_days_positive"),
        sa.CheckConstraint(
            "max_upload_bytes IS NULL OR max_upload_bytes > 0", name="max_upload_bytes_positive"
        ),
        # The hub flag and the hub kind say the same thing; they must never disagree, since
        # HubScope (cross-tenant reads) trusts them.
        sa.CheckConstraint("(kind = 'hub') = is_hub", name="hub_kind"),
        # At most one hub (KPK): a second one would be a second cross-tenant reader.
        sa.Index(
            "uq_tenants_single_hub",
            "is_hub",
            unique=True,
            sqlite_where=sa.text("is_hub"),
            postgresql_where=sa.text("is_hub"),
        ),
    )

    @validates("slug")
    def _check_slug(self, _key: str, value: str) -> str:
        # The slug ends up in registration numbers and URLs: keep it plain.
        if not _SLUG.fullmatch(value) or len(value) > 40:
            raise ValueError("tenant slug: lowercase letters, digits and single hyphens")
        return value

    def __repr__(self) -> str:
        return f"Tenant(id={self.id!r}, slug={self.slug!r})"


class TenantText(TenantOwned, Base):
    """A text of the tenant's landing pages as its admin wrote it (see :mod:`wbs.texts`).

    The markup is kept as typed and sanitised every time it is shown, so a tightened allow-list
    applies to texts saved before. One row per text and language; no row, the default text.
    """

    __tablename__ = "tenant_texts"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(sa.String(20))
    language: Mapped[str] = mapped_column(sa.String(5))
    markup: Mapped[str] = mapped_column(sa.Text)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    __table_args__ = (sa.UniqueConstraint("tenant_id", "key", "language"),)


class RecipientKey(TenantOwned, Base):
    """A public OpenPGP key every submission of the tenant is encrypted to.

    The private half lives only on the air-gapped workstation.
    """

    __tablename__ = "recipient_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    fingerprint: Mapped[str] = mapped_column(sa.String(40))
    public_key: Mapped[str] = mapped_column(sa.Text)
    # Whose key it is ("Inspektorat, tim 1"), for the admin page; None for a shared tenant key.
    owner: Mapped[str | None] = mapped_column(sa.String(200))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[dt.datetime | None] = mapped_column()

    __table_args__ = (
        sa.UniqueConstraint("tenant_id", "fingerprint"),
        sa.CheckConstraint("length(fingerprint) = 40", name="fingerprint_length"),
    )

    @validates("fingerprint")
    def _check_fingerprint(self, _key: str, value: str) -> str:
        value = value.replace(" ", "").upper()
        if not _HEX40.fullmatch(value):
            raise ValueError("fingerprint: 40 hexadecimal digits (a v4 OpenPGP key)")
        return value


class Investigator(TenantOwned, Base):
    """An account of the investigator side: verifikator, admin instansi or pemantau KPK.

    Accounts are deactivated, never deleted: cases, replies and the event log point at them.
    """

    __tablename__ = "investigators"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(sa.String(64), unique=True)
    display_name: Mapped[str] = mapped_column(sa.String(200))
    role: Mapped[Role] = mapped_column(_str_enum(Role, "role"))
    password_hash: Mapped[str] = mapped_column(sa.String(255))
    # TOTP secrets are sealed with the instance's key, bound to this row (wbs.accounts.totp):
    # "v1." and base64 of nonce, ciphertext and tag.
    totp_secret_sealed: Mapped[str | None] = mapped_column(sa.String(128))
    active: Mapped[bool] = mapped_column(default=True, server_default=sa.true())
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[dt.datetime | None] = mapped_column()
    # Login throttling (wbs.accounts): failures since the last success, and the time before
    # which no attempt is even checked.
    failed_logins: Mapped[int] = mapped_column(default=0, server_default=sa.text("0"))
    locked_until: Mapped[dt.datetime | None] = mapped_column()
    # A TOTP secret handed over but not yet proven with a code; it becomes totp_secret_sealed only
    # when a code made from it is accepted, so a mistyped or intercepted enrolment never locks
    # the account to a secret nobody holds.
    totp_pending_sealed: Mapped[str | None] = mapped_column(sa.String(128))
    # The last accepted TOTP time step: a code of this step or an earlier one is a replay.
    totp_last_step: Mapped[int | None] = mapped_column(sa.BigInteger)

    # Target of the composite foreign keys that keep references inside one tenant.
    __table_args__ = (sa.UniqueConstraint("id", "tenant_id"),)

    def __repr__(self) -> str:
        return f"Investigator(id={self.id!r}, username={self.username!r})"


class Source(TenantOwned, Base):
    """A pelapor, known only by an id derived from the codename; never by the codename.

    ``reply_secret_key`` is an armored OpenPGP secret key LOCKED with a passphrase derived from
    the codename with a separate pepper (:func:`crypto.kdf.derive_source_secrets`). The server
    cannot unlock it without the codename, which it never stores; only a logged-in pelapor's
    session can, to read replies.
    """

    __tablename__ = "sources"

    # 64 hex digits: argon2id(codename, source-id pepper). Not the codename, not reversible.
    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    reply_fingerprint: Mapped[str] = mapped_column(sa.String(40))
    reply_public_key: Mapped[str] = mapped_column(sa.Text)
    reply_secret_key: Mapped[str] = mapped_column(sa.Text)
    # Day precision: a precise creation time helps correlate a pelapor with network logs.
    created_at: Mapped[dt.datetime] = mapped_column(UTCDay(), default=utc_today_start)

    cases: Mapped[list[Case]] = relationship(back_populates="source", passive_deletes=True)
    _round_created_at = validates("created_at")(_day)

    __table_args__ = (
        sa.UniqueConstraint("id", "tenant_id"),
        sa.CheckConstraint("length(id) = 64", name="id_length"),
    )

    @validates("id")
    def _check_id(self, _key: str, value: str) -> str:
        # A cheap guard against a codename (words) being stored where its hash belongs.
        if not _HEX64.fullmatch(value):
            raise ValueError("source id: 64 lowercase hexadecimal digits derived from a codename")
        return value

    @validates("reply_fingerprint")
    def _check_reply_fingerprint(self, _key: str, value: str) -> str:
        value = value.replace(" ", "").upper()
        if not _HEX40.fullmatch(value):
            raise ValueError("reply fingerprint: 40 hexadecimal digits")
        return value

    def __repr__(self) -> str:
        # Even the derived id is shortened: it is what links a session to a source.
        return f"Source(id={self.id[:8] if self.id else None!r}...)"


# The predicate of the partial indexes on the cases sent to KPK (migration 0021), as
# SharedScope's ``Case.sent_to_kpk.is_(True)`` renders on each dialect.
_SENT_TO_KPK_SQLITE = sa.text("sent_to_kpk IS 1")
_SENT_TO_KPK_POSTGRESQL = sa.text("sent_to_kpk IS TRUE")


class Case(TenantOwned, Base):
    """A report (pengaduan): its status, deadlines, assignment and inbox flags."""

    __tablename__ = "cases"

    id: Mapped[int] = mapped_column(primary_key=True)
    source_id: Mapped[str] = mapped_column(sa.String(64))
    registration_number: Mapped[str] = mapped_column(sa.String(80), unique=True)
    category: Mapped[str] = mapped_column(sa.String(64))
    mcp_area: Mapped[str | None] = mapped_column(sa.String(64))
    status: Mapped[CaseStatus] = mapped_column(
        _str_enum(CaseStatus, "case_status"), default=CaseStatus.BARU
    )
    # True when the report was also encrypted to KPK's key (sent at intake or forwarded).
    sent_to_kpk: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    # Day precision: the pelapor's arrival time (see Source.created_at). Deadlines count in
    # whole working days, so nothing is lost.
    received_at: Mapped[dt.datetime] = mapped_column(UTCDay(), default=utc_today_start)
    first_response_due: Mapped[dt.date] = mapped_column(sa.Date)
    closure_due: Mapped[dt.date | None] = mapped_column(sa.Date)
    assignee_id: Mapped[int | None] = mapped_column()
    # Day precision, since a pelapor's message updates it too. Order within a day by id.
    last_activity_at: Mapped[dt.datetime] = mapped_column(UTCDay(), default=utc_today_start)
    # Something from the pelapor no investigator has opened yet.
    unread: Mapped[bool] = mapped_column(default=True, server_default=sa.true())
    # The team's marks (wbs.domain.CaseFlag), shared by the tenant's investigators; set and
    # cleared only through wbs.casework.set_flag, which logs each change (migration 0012).
    starred: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    needs_reply: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    # The jurisdiction hint, *mungkin kewenangan KPK* (wbs.domain.kpk_hint, migration 0018):
    # derived from two coarse answers of the report form, which stay inside the encryption;
    # None where nobody asked (operator intake, older cases).
    kpk_hint: Mapped[bool | None] = mapped_column()
    # The first status change or reply (investigator-side, so precise); None until then.
    first_response_at: Mapped[dt.datetime | None] = mapped_column()
    # What the dashboards count of it, fixed when it is given (wbs.deadlines.record_first_response,
    # migration 0015): the days and working days it took from the day received, and whether it
    # came by the due day. Stored, like the due day itself, so that KPK's dashboard is a GROUP
    # BY of small integers over cases rather than a date computation per row.
    first_response_days: Mapped[int | None] = mapped_column()
    first_response_workdays: Mapped[int | None] = mapped_column()
    first_response_in_time: Mapped[bool | None] = mapped_column()
    # When the case last entered a final status (diarsipkan, selesai); None while open.
    closed_at: Mapped[dt.datetime | None] = mapped_column()
    # Where the report arrived (migration 0013): the drop box, or a channel an operator typed
    # it in from. No CHECK constraint (like the event kinds): a new channel needs no rebuild.
    channel: Mapped[Channel] = mapped_column(
        _str_enum(Channel, "channel", check=False), default=Channel.SITUS,
        server_default=Channel.SITUS.value,
    )
    # The id of the operator-intake package the case came from, so the same package uploaded
    # twice opens one case (wbs.operator_intake). None for the drop box's cases.
    intake_package: Mapped[str | None] = mapped_column(sa.String(32))
    # Pelimpahan (wbs.forwarding, migration 0016): the linked case in another tenant. The
    # origin case names the case that now handles the report; the receiving case names the
    # case it came from (and keeps the forwarding package's id in intake_package, so a
    # package cannot open two cases). Plain integers without foreign keys, like the log's:
    # a link between two tenants, read only by wbs.forwarding, which follows it for the
    # pelapor and never through a tenant's scope.
    linked_to_case_id: Mapped[int | None] = mapped_column()
    linked_from_case_id: Mapped[int | None] = mapped_column()
    # Pengambilalihan (wbs.takeover, migration 0019): when KPK took the handling over. The
    # origin then keeps read-only metadata: no status, reply or content of its own any more.
    taken_over_at: Mapped[dt.datetime | None] = mapped_column()
    # Permintaan pelimpahan (wbs.forward_requests, migration 0019): when KPK asked the tenant
    # to forward the case, while the request is open; the tenant forwards it or declines.
    forward_requested_at: Mapped[dt.datetime | None] = mapped_column()

    # One handler per matter (wbs.matters, migration 0020): the matter (perkara) the case is
    # linked in, and the tenant whose account linked it (who may unlink it, with KPK, until a
    # lead is named). Plain integers, like the forwarding links: a matter spans tenants and
    # is read only by wbs.matters, never through a tenant's scope.
    matter_id: Mapped[int | None] = mapped_column(index=True)
    matter_linked_by: Mapped[int | None] = mapped_column()
    # When the case was closed into its matter's lead (wbs.matters.close_merged, migration
    # 0024); cleared when it is reopened. What the dashboards count as "digabung".
    merged_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())

    source: Mapped[Source] = relationship(back_populates="cases")
    _round_times = validates("received_at", "last_activity_at")(_day)
    # Only assignee_id is written through this relationship; tenant_id is the case's own and
    # the composite foreign key makes the database refuse another tenant's investigator.
    assignee: Mapped[Investigator | None] = relationship(
        primaryjoin=lambda: sa.and_(
            foreign(Case.assignee_id) == Investigator.id,
            Case.tenant_id == Investigator.tenant_id,
        ),
    )
    submissions: Mapped[list[Submission]] = relationship(
        back_populates="case", passive_deletes=True, order_by=lambda: Submission.id
    )
    replies: Mapped[list[Reply]] = relationship(
        back_populates="case", passive_deletes=True, order_by=lambda: Reply.id
    )

    __table_args__ = (
        sa.UniqueConstraint("id", "tenant_id"),
        sa.ForeignKeyConstraint(
            ["source_id", "tenant_id"], ["sources.id", "sources.tenant_id"], ondelete="CASCADE"
        ),
        # No ON DELETE action: investigators are deactivated, never deleted.
        sa.ForeignKeyConstraint(
            ["assignee_id", "tenant_id"], ["investigators.id", "investigators.tenant_id"]
        ),
        # The inboxes: by status, by deadline, by assignee (all within a tenant).
        sa.Index(None, "tenant_id", "status"),
        sa.Index(None, "tenant_id", "first_response_due"),
        sa.Index(None, "tenant_id", "assignee_id"),
        sa.Index(None, "source_id"),
        # KPK's dashboard (wbs.monitoring): covering indexes for its GROUP BYs (migrations 0004
        # and 0008: "overdue" reads the first response too, wbs.deadlines).
        sa.Index(
            "ix_cases_deadlines",
            "tenant_id", "status", "first_response_due", "closure_due", "first_response_at",
            "first_response_in_time",
        ),
        # The dashboards' categories, MCP areas and channels in one pass (migration 0021).
        sa.Index("ix_cases_categories", "category", "mcp_area", "channel"),
        # The first-response figures per institution and the months' trend (wbs.monitoring),
        # both covering, migration 0015.
        sa.Index(
            "ix_cases_first_response_figures",
            "tenant_id", "first_response_days", "first_response_workdays",
        ),
        sa.Index(
            "ix_cases_trend",
            "received_at", "tenant_id", "status", "first_response_due", "first_response_at",
            "first_response_in_time",
        ),
        # One case per package and tenant (the lookup is scoped; so is the index).
        sa.Index(None, "tenant_id", "intake_package", unique=True),
        # The cases that may be KPK's to handle, counted on the dashboards (migration 0018).
        sa.Index(
            "ix_cases_kpk_hint", "tenant_id",
            sqlite_where=sa.text("kpk_hint = 1"), postgresql_where=sa.text("kpk_hint"),
        ),
        # The dashboards' count by channel (wbs.monitoring), migration 0013.
        sa.Index(None, "tenant_id", "channel"),
        # Migration 0021, the dashboards (wbs.monitoring), each figure from its own covering
        # index: tenants x statuses x the judged first response; the overdue first responses
        # and closures, read as ranges (open statuses, unanswered, due before today); the
        # months' trend.
        sa.Index("ix_cases_status_in_time", "tenant_id", "status", "first_response_in_time"),
        sa.Index(
            "ix_cases_unanswered",
            "status", "first_response_at", "first_response_due", "tenant_id", "received_at",
        ),
        sa.Index("ix_cases_closure", "status", "closure_due", "tenant_id"),
        sa.Index("ix_cases_received", "received_at", "first_response_in_time"),
        # A period of one category or one MCP area, which the tallies leave to the rows
        # (wbs.tallies.facet): exactly those cases, not the whole period's.
        sa.Index("ix_cases_category_received", "category", "received_at"),
        sa.Index("ix_cases_area_received", "mcp_area", "received_at"),
        # Migration 0021, KPK's inbox (wbs.inbox): the cases sent to KPK, one part of KPK's
        # copy (wbs.tenancy.SharedScope.select_parts), counted and sorted from partial indexes.
        # The predicate is written as the scope's condition renders, so that SQLite, which
        # matches it term by term, uses them.
        sa.Index(
            "ix_cases_kpk_deadline", "first_response_due", "id",
            sqlite_where=_SENT_TO_KPK_SQLITE, postgresql_where=_SENT_TO_KPK_POSTGRESQL,
        ),
        sa.Index(
            "ix_cases_kpk_received", "received_at", "id",
            sqlite_where=_SENT_TO_KPK_SQLITE, postgresql_where=_SENT_TO_KPK_POSTGRESQL,
        ),
        sa.Index(
            "ix_cases_kpk_unread", "unread",
            sqlite_where=_SENT_TO_KPK_SQLITE, postgresql_where=_SENT_TO_KPK_POSTGRESQL,
        ),
    )

    def __repr__(self) -> str:
        return f"Case(id={self.id!r}, registration_number={self.registration_number!r})"


class CaseTally(Base):
    """How many cases have a value of a figure, per institution and month received: kept by
    triggers on ``cases`` (:mod:`wbs.tallies`, migration 0024), read by the dashboards.

    Not tenant-owned: it is read only through :mod:`wbs.monitoring`, which names the
    institutions its reader may count. ``month`` is :data:`wbs.tallies.ALL_MONTHS` on the rows
    that count every month.
    """

    __tablename__ = "case_tallies"

    # Key order: a view reads one figure's rows of a facet (every case, a category, an MCP
    # area) and a period (a month, quarter, year, or every month), a range of values (due
    # days) among them; an
    # instansi's own summary, through the second index.
    figure: Mapped[str] = mapped_column(sa.String(16), primary_key=True)
    facet: Mapped[str] = mapped_column(sa.String(80), primary_key=True)
    grain: Mapped[str] = mapped_column(sa.String(1), primary_key=True)
    month: Mapped[dt.date] = mapped_column(sa.Date, primary_key=True)
    value: Mapped[str] = mapped_column(sa.String(80), primary_key=True)
    tenant_id: Mapped[int] = mapped_column(primary_key=True)
    cases: Mapped[int] = mapped_column()

    __table_args__ = (
        sa.Index(
            "ix_case_tallies_tenant", "tenant_id", "figure", "facet", "grain", "month", "value"
        ),
        # SQLite: the rows stored in key order (as PostgreSQL reads them from the primary
        # key's index with the count beside it, after VACUUM), not a key index beside them.
        {"sqlite_with_rowid": False},
    )


class Matter(Base):
    """A perkara: cases of several tenants (or one) linked as one affair, so that one of them
    leads the handling and the others close into it (:mod:`wbs.matters`, migration 0020).

    Tenant-neutral on purpose: it belongs to no instansi, holds no content and no name, only
    which case leads (a plain integer, like the log's ``case_id``) and the accountable times
    of investigators' actions. Its cases point at it (``Case.matter_id``).
    """

    __tablename__ = "matters"

    id: Mapped[int] = mapped_column(primary_key=True)
    lead_case_id: Mapped[int | None] = mapped_column()
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    lead_named_at: Mapped[dt.datetime | None] = mapped_column()

    def __repr__(self) -> str:
        return f"Matter(id={self.id!r}, lead_case_id={self.lead_case_id!r})"


class Submission(TenantOwned, Base):
    """Something a pelapor sent, stored only as a ciphertext file in the store."""

    __tablename__ = "submissions"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column()
    kind: Mapped[SubmissionKind] = mapped_column(_str_enum(SubmissionKind, "submission_kind"))
    # Path of the OpenPGP ciphertext relative to the store root. Unique: deleting one row's
    # file must never delete another row's content.
    store_path: Mapped[str] = mapped_column(sa.String(255), unique=True)
    # The stored ciphertext's size: padded (see framing), never the document's exact size.
    size: Mapped[int] = mapped_column(sa.BigInteger)
    # How the plaintext was padded inside the encryption (crypto.padding): "padme/1" for
    # everything stored now, "none" for items stored before padding existed. Set explicitly
    # by whoever encrypts; readers strip the frame by it and never guess.
    framing: Mapped[str] = mapped_column(sa.String(16), server_default=FRAMING_NONE)
    # Day precision: a pelapor's action (see Source.created_at). Order within a case by id.
    created_at: Mapped[dt.datetime] = mapped_column(UTCDay(), default=utc_today_start)
    seen: Mapped[bool] = mapped_column(default=False, server_default=sa.false())

    case: Mapped[Case] = relationship(back_populates="submissions")
    _round_created_at = validates("created_at")(_day)
    _check_framing = validates("framing")(_framing)

    __table_args__ = (
        sa.ForeignKeyConstraint(
            ["case_id", "tenant_id"], ["cases.id", "cases.tenant_id"], ondelete="CASCADE"
        ),
        sa.Index(None, "case_id"),
        sa.CheckConstraint("size >= 0", name="size_not_negative"),
    )


class Reply(TenantOwned, Base):
    """An investigator's answer, encrypted to the source's reply key and the tenant's keys."""

    __tablename__ = "replies"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column()
    investigator_id: Mapped[int | None] = mapped_column()
    store_path: Mapped[str] = mapped_column(sa.String(255), unique=True)
    size: Mapped[int] = mapped_column(sa.BigInteger)  # padded, as a submission's
    framing: Mapped[str] = mapped_column(sa.String(16), server_default=FRAMING_NONE)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    read_by_source: Mapped[bool] = mapped_column(default=False, server_default=sa.false())

    case: Mapped[Case] = relationship(back_populates="replies")
    _check_framing = validates("framing")(_framing)
    investigator: Mapped[Investigator | None] = relationship(
        primaryjoin=lambda: sa.and_(
            foreign(Reply.investigator_id) == Investigator.id,
            Reply.tenant_id == Investigator.tenant_id,
        ),
    )

    __table_args__ = (
        sa.ForeignKeyConstraint(
            ["case_id", "tenant_id"], ["cases.id", "cases.tenant_id"], ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["investigator_id", "tenant_id"], ["investigators.id", "investigators.tenant_id"]
        ),
        sa.Index(None, "case_id"),
        sa.CheckConstraint("size >= 0", name="size_not_negative"),
    )


class Event(TenantOwned, Base):
    """An entry of the APPEND-ONLY log of status changes and actions.

    Refused on update and delete three times over: by the ORM (mapper events below), by bulk
    ORM statements (a Session event below) and by database triggers created in the migration.
    ``case_id`` and ``actor_investigator_id`` are plain integers without foreign keys, so the
    log outlives a deleted case. ``tenant_id`` references the tenant without cascade: a tenant
    with history cannot be deleted by accident.

    ``note`` is for investigators' short remarks (the reason for archiving, whom a case went
    to); report content never goes here, since the log is plaintext.
    """

    __tablename__ = "events"
    _tenant_ondelete = None

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int | None] = mapped_column(index=True)
    actor_investigator_id: Mapped[int | None] = mapped_column()
    kind: Mapped[EventKind] = mapped_column(_str_enum(EventKind, "event_kind", check=False))
    from_status: Mapped[CaseStatus | None] = mapped_column(
        _str_enum(CaseStatus, "from_status", check=False)
    )
    to_status: Mapped[CaseStatus | None] = mapped_column(
        _str_enum(CaseStatus, "to_status", check=False)
    )
    note: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        # The first responses of cases, for KPK's dashboard (wbs.monitoring, migration 0004):
        # only status changes and replies, in case order. The condition's text must match the
        # query's for SQLite to use it.
        sa.Index(
            "ix_events_first_response",
            "case_id",
            "kind",
            "created_at",
            sqlite_where=sa.text("kind IN ('status_changed', 'reply_added')"),
            postgresql_where=sa.text("kind IN ('status_changed', 'reply_added')"),
        ),
    )

    def __repr__(self) -> str:
        return f"Event(id={self.id!r}, kind={self.kind!r}, case_id={self.case_id!r})"


class SourceSession(TenantOwned, Base):
    """A pelapor's server-side session, sealed with a key that only the cookie holds.

    The cookie carries a random session id and a random key. The row is found by a hash of the
    id and holds, sealed (AES-GCM) with the key, what the session needs: the source id, the
    passphrase of the reply key, the exact expiry and the rate-limit window. So neither the
    cookie alone (no record) nor the server's disk alone (no key) reveals who the session
    belongs to, unlocks a reply or tells when the pelapor was active, and nothing in the row
    links it to a source. Rows are deleted at logout, when found expired, and by the daily purge.
    """

    __tablename__ = "source_sessions"

    # SHA-256 of the session id: a database copy cannot be turned into working cookies.
    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    sealed: Mapped[bytes] = mapped_column(sa.LargeBinary)
    # The WIB day of the sealed expiry: all the purge needs, and all that is kept in the clear
    # (a day, as for every time of a pelapor's; migration 0006).
    purge_after: Mapped[dt.datetime] = mapped_column(UTCDay(), index=True)
    _round_purge_after = validates("purge_after")(_day)


class InvestigatorSession(TenantOwned, Base):
    """A logged-in investigator's server-side session (see :mod:`wbs.accounts`).

    The cookie holds a random token; the row is keyed by its SHA-256, so a copy of the database
    cannot be turned into working cookies. Expiry is computed from ``created_at`` (absolute)
    and ``last_seen_at`` (idle) with the lifetimes in force at the time of the check, so
    shortening them in the configuration applies to sessions already open.
    """

    __tablename__ = "investigator_sessions"

    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    investigator_id: Mapped[int] = mapped_column(index=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)

    __table_args__ = (
        # Composite: a session can only belong to an investigator of its own tenant.
        sa.ForeignKeyConstraint(
            ["investigator_id", "tenant_id"],
            ["investigators.id", "investigators.tenant_id"],
            ondelete="CASCADE",
            # The conventional name would pass PostgreSQL's 63-character limit and be cut.
            name="fk_investigator_sessions_investigator",
        ),
    )


class AlertSetting(TenantOwned, Base):
    """An account's content-free e-mail alerts (:mod:`wbs.alerts`): where they go, whether the
    investigator wants them, in which language, and when the last digests went out.

    The investigator decides (their account page); admins see the setting but cannot change it.
    No row, no address: no mail. The sent times are the server's own actions, kept exact, so a
    second run on the same day (or in the same week) sends nothing twice.
    """

    __tablename__ = "alert_settings"

    investigator_id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str | None] = mapped_column(sa.String(254))
    enabled: Mapped[bool] = mapped_column(default=True, server_default=sa.true())
    language: Mapped[str] = mapped_column(sa.String(5), default="id", server_default="id")
    daily_sent_at: Mapped[dt.datetime | None] = mapped_column()
    weekly_sent_at: Mapped[dt.datetime | None] = mapped_column()

    __table_args__ = (
        # Composite: an account's settings stay in the account's tenant.
        sa.ForeignKeyConstraint(
            ["investigator_id", "tenant_id"],
            ["investigators.id", "investigators.tenant_id"],
            ondelete="CASCADE",
            name="fk_alert_settings_investigator",
        ),
    )

    def __repr__(self) -> str:
        return f"AlertSetting(investigator_id={self.investigator_id!r})"


class CaseSketch(TenantOwned, Base):
    """The keyed similarity sketch of one case, uploaded from the tenant's workstation
    (:mod:`wbs.sketches`, format :mod:`crypto.sketches`).

    MinHash values of tokens the workstation passed through HMAC with a key the server never
    holds: no text, and nothing the server can test a guess against. What they do tell is how
    alike two cases are, so they are compared only for KPK's monitor, which sees the pair's
    handling metadata and never the content. One row per case; an upload replaces it.
    """

    __tablename__ = "case_sketches"

    case_id: Mapped[int] = mapped_column(primary_key=True)
    # Which sketch key made it (a keyed hash of a constant): only sketches of one key compare.
    key_id: Mapped[str] = mapped_column(sa.String(16))
    # JSON: {part: [32-bit values]}, checked against the format before it is stored.
    signatures: Mapped[str] = mapped_column(sa.Text)
    # An investigator's upload: their action, no pelapor's time.
    uploaded_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        sa.ForeignKeyConstraint(
            ["case_id", "tenant_id"], ["cases.id", "cases.tenant_id"], ondelete="CASCADE"
        ),
        sa.Index(None, "key_id"),
    )


class LoginFailure(Base):
    """One failed investigator login, for the global limiter in :mod:`wbs.accounts`.

    Deliberately nothing but a time: no username (an attacker's guesses at usernames would
    otherwise be kept), no tenant, no address (the server never sees one). Rows older than the
    limiter's window are deleted as new ones arrive.
    """

    __tablename__ = "login_failures"

    id: Mapped[int] = mapped_column(primary_key=True)
    failed_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)


# --- Federation (wbs.federation) ---------------------------------------------------------------


class FederationPeer(Base):
    """Another installation this one exchanges with: on a hub, each member; on a member, its hub.

    Pinned at joining by the fingerprint an operator confirmed out of band; every message from
    it must be signed by exactly that key. The sequence numbers make the link exactly-once:
    ``received_seq`` is the last of the peer's messages applied here (committed in the same
    transaction as the message's effect), ``sent_seq`` the last this side queued for it and
    ``acked_seq`` the last the peer confirmed applying.
    """

    __tablename__ = "federation_peers"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(40), unique=True)
    role: Mapped[str] = mapped_column(sa.String(10))  # what the peer is to us: hub or member
    fingerprint: Mapped[str] = mapped_column(sa.String(40), unique=True)
    public_key: Mapped[str] = mapped_column(sa.Text)
    # On a member: the hub's federation onion. On a hub: None.
    onion_address: Mapped[str | None] = mapped_column(sa.String(100))
    # On a hub: the member's x25519 client authorization key (base32) for the federation onion.
    client_key: Mapped[str | None] = mapped_column(sa.String(60))
    # On a hub: the slugs of the instansi this member runs, as the hub's operator allowed them
    # (its join request, ``peluit federation allow``); it may write mirrors of these only.
    instansi: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    status: Mapped[str] = mapped_column(sa.String(10), default="active")
    joined_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[dt.datetime | None] = mapped_column()
    received_seq: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    sent_seq: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    acked_seq: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    # Messages applied, counted in their own transactions: equals received_seq on a sound link,
    # so a message applied twice shows.
    applied_count: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    # When the link's numbering last started over (ms since the epoch; 0: never): after a
    # restore from a backup (wbs.federation.exchange.resync).
    epoch: Mapped[int] = mapped_column(sa.BigInteger, default=0, server_default=sa.text("0"))
    # On a member: its hub is KPK's own installation (false: a regional hub, which passes the
    # member's data on to KPK but cannot hand a case to KPK: wbs.forwarding).
    kpk_direct: Mapped[bool] = mapped_column(default=True, server_default=sa.true())
    last_contact_at: Mapped[dt.datetime | None] = mapped_column()
    last_error: Mapped[str | None] = mapped_column(sa.String(300))

    __table_args__ = (
        sa.CheckConstraint("role IN ('hub', 'member')", name="role"),
        sa.CheckConstraint("status IN ('active', 'revoked', 'left')", name="status"),
    )

    @property
    def instansi_slugs(self) -> frozenset[str]:
        return frozenset(self.instansi or ())

    def __repr__(self) -> str:
        return f"FederationPeer(name={self.name!r}, role={self.role!r})"


class FederationOutbox(Base):
    """A message queued for a peer, kept until the peer confirms applying it."""

    __tablename__ = "federation_outbox"

    peer_id: Mapped[int] = mapped_column(
        sa.ForeignKey("federation_peers.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True, autoincrement=False)
    kind: Mapped[str] = mapped_column(sa.String(32))
    body: Mapped[str] = mapped_column(sa.Text)  # canonical JSON


class FederationDigest(Base):
    """What was last queued for a peer about one thing (``tenant:<slug>``,
    ``case:<registration number>``): the SHA-256 of its message body. The sync queues what
    changed since, and a removal for what is gone, without a hook in every place a case
    changes."""

    __tablename__ = "federation_digests"

    peer_id: Mapped[int] = mapped_column(
        sa.ForeignKey("federation_peers.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(sa.String(100), primary_key=True)
    digest: Mapped[str] = mapped_column(sa.String(64))


class FederationRefusal(Base):
    """A federation request or message refused: forged, replayed, out of order, foreign, from
    a revoked peer. ``peer_id`` when the claimed sender is known (the claim may be false)."""

    __tablename__ = "federation_refusals"

    id: Mapped[int] = mapped_column(primary_key=True)
    peer_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("federation_peers.id", ondelete="CASCADE"), index=True
    )
    reason: Mapped[str] = mapped_column(sa.String(40))
    detail: Mapped[str] = mapped_column(sa.String(300))  # the latest one's
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    # The same refusal again within an hour (a revoked member's timer, a flood of garbage)
    # is counted on its row, not written anew.
    repeated: Mapped[int] = mapped_column(default=1)
    last_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)


class FederationNonce(Base):
    """Request nonces seen from members within the freshness window: a request replayed
    inside the window is refused, one outside it is refused as stale."""

    __tablename__ = "federation_nonces"

    nonce: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    seen_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)


# --- The append-only log, enforced in the ORM -----------------------------------------------


@event.listens_for(Event, "before_update")
def _refuse_event_update(_mapper: Mapper[Event], _conn: sa.Connection, target: Event) -> None:
    raise AppendOnlyError(f"the event log is append-only: refusing to change {target!r}")


@event.listens_for(Event, "before_delete")
def _refuse_event_delete(_mapper: Mapper[Event], _conn: sa.Connection, target: Event) -> None:
    raise AppendOnlyError(f"the event log is append-only: refusing to delete {target!r}")


@event.listens_for(Event, "before_insert")
def _round_source_event_time(_mapper: Mapper[Event], _conn: sa.Connection, target: Event) -> None:
    # Events a pelapor's action caused would otherwise keep the precise time that the
    # day-rounded columns of sources, cases and submissions deliberately drop.
    if target.kind in SOURCE_EVENT_KINDS:
        target.created_at = round_to_day(target.created_at or utcnow())


@event.listens_for(Session, "do_orm_execute")
def _refuse_bulk_event_changes(state: ORMExecuteState) -> None:
    # session.execute(update(Event)) / delete(Event) bypass the mapper events above.
    mapper = state.bind_mapper
    if (state.is_update or state.is_delete) and mapper is not None and mapper.class_ is Event:
        raise AppendOnlyError("the event log is append-only: no bulk update or delete")


# --- Registration numbers -------------------------------------------------------------------


# Registration numbers from here up are drawn by a hub for a member's instansi, never by the
# member itself.
FEDERATION_NUMBERS = 900_000


def new_registration_number(
    session: Session, tenant: Tenant, year: int, *, attempts: int = 20
) -> str:
    """A registration number not yet used: random digits, checked against the database.

    Random rather than sequential so a receipt does not reveal the tenant's report volume. The
    unique constraint still guards the rare race of two requests drawing the same number.

    A hub drawing a number for a member's instansi (a case KPK forwards to it, made in the
    instansi's mirror here and created with this number there: :mod:`wbs.federation.handling`)
    draws from the top tenth of the range, which no installation draws from for its own: the
    member cannot have drawn the same number for a report of its own meanwhile.
    """
    mirror = tenant.federation_peer_id is not None
    low, high = (FEDERATION_NUMBERS, 10**6) if mirror else (0, FEDERATION_NUMBERS)
    for _ in range(attempts):
        number = format_registration_number(
            tenant.slug, year, low + secrets.randbelow(high - low)
        )
        taken = session.scalar(
            sa.select(sa.literal(True)).where(Case.registration_number == number)
        )
        if not taken:
            return number
    raise RuntimeError(f"no free registration number for {tenant.slug} in {year}")


TENANT_OWNED_MODELS: tuple[type[Base], ...] = (
    RecipientKey,
    Investigator,
    Source,
    Case,
    Submission,
    Reply,
    Event,
    SourceSession,
    InvestigatorSession,
    CaseSketch,
)
