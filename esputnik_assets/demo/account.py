"""A deterministic synthetic eSputnik account: the truth that the demo server serves and that tests compare to.

Every value is a pure function of (seed, sizes, revision, day), drawn from numpy generators seeded with those
integers, so two processes build byte-identical answers. Day facts are built columnarly (numpy + polars) because
benchmarks ask for a million activities a day. Datetimes are naive local times of the account, kept internally as
milliseconds since 1970-01-01 (column ``_t``) and answered as ``YYYY-MM-DDTHH:mm:ss[.fff]`` text, whole seconds
in both forms (see `api_datetime`).

Behaviour, so that the metrics have something to find: each contact has its own purchase rate and an interest that
fades gradually around its own day (churn is a slope, not a hidden stop day), interest decides who opens and clicks,
a click raises the contact's chance to order over the next days, an order is credited in revenue to the contact's
own last click or open before it (some also to a second message; workflow messages too), order items come mostly
from one complementary group of products, bounces carry SMTP codes, and broadcasts send on their start day.
"""

from __future__ import annotations

import dataclasses
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
import polars as pl

DAY_MS = 86_400_000
EPOCH_DAY = date(1970, 1, 1).toordinal()
ENTITY_EPOCH_MS = (date(2025, 1, 1).toordinal() - EPOCH_DAY) * DAY_MS
ENTITY_SPAN_MS = 700 * DAY_MS

ENTITY_DATASETS = ("contacts", "messages", "broadcasts", "devices")
FACT_DATASETS = ("contactActivities", "orders", "events", "revenue")
EXPORT_DATASETS = (
    "broadcasts", "contactActivities", "contacts", "devices", "events", "messages", "orderItems", "orders", "revenue",
)

MESSAGE_TYPES: dict[str, str] = {
    "email": "Email", "sms": "Sms", "viber": "Viber", "mobilepush": "MobilePush",
    "webpush": "WebPush", "appinbox": "AppInbox", "telegram": "Telegram",
}
MESSAGE_COUNTS = {"email": 40, "sms": 20, "viber": 12, "mobilepush": 16, "webpush": 12, "appinbox": 10, "telegram": 10}
# Broadcasts: a fixed number a day over the served span, each started on its send day, so every day of the span has
# broadcasts that send on it.
BROADCAST_FIRST_DAY = date(2025, 7, 1).toordinal() - EPOCH_DAY
BROADCAST_DAYS = 730
BROADCASTS_PER_DAY = 2
BROADCAST_COUNT = BROADCAST_DAYS * BROADCASTS_PER_DAY
MEDIA_TYPES = ["Email", "Sms", "Viber", "MobilePush", "WebPush", "AppInbox", "Widget", "In-App", "Telegram"]
REVENUE_MEDIA = ["Email", "Sms", "Viber", "MobilePush", "WebPush", "AppInbox"]
# Example costs of one delivered message per mediaType, so the demo's campaign_roi has an roi: illustrations, not
# eSputnik's prices (README, "7. ROI"); a live account's costs are its own ESPUTNIK_COST_PER_MESSAGE_<MEDIA>.
EXAMPLE_COST_PER_MESSAGE = {
    "Email": 0.002, "Sms": 0.045, "Viber": 0.03, "Telegram": 0.01,
    "MobilePush": 0.0005, "WebPush": 0.0005, "AppInbox": 0.0005, "Widget": 0.0005, "In-App": 0.0005,
}  # fmt: skip

FIRST_NAMES = [
    ("Olena", "olena"), ("Андрій", "andrii"), ("Łukasz", "lukasz"), ("Zofia", "zofia"), ("Тарас", "taras"),
    ("Małgorzata", "malgorzata"), ("Ірина", "iryna"), ("Anna", "anna"), ("Mykola", "mykola"),
    ("Юлія 🌸", "yulia"), ("Paweł", "pawel"), ("Dmytro", "dmytro"), ("Grażyna", "grazyna"), ("Ольга", "olha"),
    ("John", "john"), ("Sofiia", "sofiia"),
]
LAST_NAMES = [
    "Koval", "Шевченко", "Kowalski", "Nowak", "Бондаренко", "Wiśniewska", "Ткаченко", "Lewandowski", "Мельник",
    "O'Brien", "Kravets", "Zieliński", "Гончаренко 🚀", "Smith",
]
DOMAINS = ["example.com", "Example.COM", "gmail.com", "ukr.net", "wp.pl", "Gmail.com", "i.ua", "onet.pl"]
LANGUAGES = ["uk", "pl", "en", "de"]
CONTACT_SOURCES = ["SITE_AUTOMATED", "I_MESSAGE", "CAMPAIGN", "IMPORT", "MANUAL", "SUBSCRIPTION", "ORDER"]
EMAIL_STATUSES = ["ACTIVE", "ACTIVE", "ACTIVE", "INACTIVE", "UNSUBSCRIBED", "BOUNCED"]
BROADCAST_STATUSES = ["IDLE", "RUNNING", "PAUSED", "SCHEDULED", "UNCONFIRMED", "CONSIDERATION", "BLOCKED"]
ORDER_STATUSES = ["INITIALIZED", "IN_PROGRESS", "DELIVERED", "CANCELLED", "ABANDONED_SHOPPING_CART"]
EVENT_TYPES = ["productViewed", "addedToCart", "orderCompleted", "pageViewed", "abandonedCart", "customerRegistered"]
MESSAGE_NAMES = [
    "Black Friday preview", "Abandoned cart", "Welcome series", "Знижки тижня", "Nowości w sklepie",
    "Win-back 🎁", "Order shipped", "Price drop", "Нагадування про кошик", "Birthday bonus",
]
TAG_POOL = ["promo", "bf", "trigger", "news", "акція", "sale", "welcome"]
UTM_CAMPAIGNS = ["bf_preview", "cart_recovery", "welcome", "winback", "price_drop"]
# Bounce descriptions as an SMTP server words them: a 5xx code is a hard bounce, a 4xx one (or none) a soft one.
UNDELIVERED_REASONS: list[tuple[str | None, bool]] = [
    ("550 5.1.1 User unknown", True), ("421 4.7.0 Try again later", False), ("452 4.2.2 Mailbox full", False),
    (" 554 5.7.1 Message rejected as spam", True), ("450 4.2.1 Mailbox temporarily unavailable", False),
    (None, False),
]
SKUS = 59  # SKU-1 .. SKU-59
# Complementary groups: consecutive SKUs, four to a group (kettle, mug, toaster, ...). An order picks a group and
# draws most of its items from it, so a real pair shares far more orders than chance gives (lift well above 1).
SKU_GROUP_SIZE = 4
SAME_GROUP_ITEM = 0.75
PRODUCTS = [
    ("Kettle", "1.7 l"), ("Чайник", "Скло, 1,5 л"), ("Toaster", "2 slots"), ("Ekspres do kawy", "15 bar"),
    ("Блендер", "600 Вт"), ("Mug ☕", "350 ml"), ("Patelnia", "28 cm"), ("Ковдра", "200×220"),
]
DELIVERY_ADDRESSES = ["Kyiv, Khreshchatyk 1", "Київ, вул. Хрещатик 22", "Warszawa, ul. Marszałkowska 10", "Lviv"]
PARAM_NAMES = ["productId", "price", "currency", "category", "quantity", "url"]
CATEGORIES = ["Кухня", "Łazienka", "Garden", "Дім і сад"]
LONG_TEXT = "Опис товару: чайник зі скла 1,7 л, підсвітка ✨, автовимкнення; Łódź → Київ. " * 6

# (statuses of one send's funnel, probability). A send answers SENT first; then its fate.
CHAINS: list[tuple[tuple[str, ...], float]] = [
    (("SENT", "UNDELIVERED"), 0.06),
    (("SENT", "DELIVERED"), 0.40),
    (("SENT", "DELIVERED", "READ"), 0.26),
    (("SENT", "DELIVERED", "READ", "CLICKED"), 0.18),
    (("SENT", "DELIVERED", "READ", "UNSUBSCRIBED"), 0.02),
    (("SENT", "DELIVERED", "READ", "SPAM"), 0.01),
    (("SENT", "DELIVERED", "READ", "CLICKED", "UNSUBSCRIBED"), 0.01),
    (("SUBSCRIPTION_CHANGED",), 0.03),
    (("PUSH_SUBSCRIBED",), 0.03),
]
STATUSES = ["SENT", "DELIVERED", "UNDELIVERED", "READ", "CLICKED", "UNSUBSCRIBED", "SPAM",
            "SUBSCRIPTION_CHANGED", "PUSH_SUBSCRIBED"]
MAX_STEPS = max(len(c) for c, _ in CHAINS)
CHAIN_LENGTHS = np.array([len(c) for c, _ in CHAINS])
CHAIN_PROBS = np.array([p for _, p in CHAINS])
CHAIN_STATUS = np.array([[STATUSES.index(s) for s in c] + [0] * (MAX_STEPS - len(c)) for c, _ in CHAINS])
SINGLE_CHAINS = np.array([len(c) == 1 for c, _ in CHAINS])
# Upper bound of how far (as a fraction of the rest of the day) each funnel step follows the previous one.
STEP_DELAY = [0.0, 0.0005, 0.05, 0.01, 0.01]

ACTIVITY_COLUMNS = [
    "iid", "offset", "contactId", "email", "sms", "mediaType", "activityStatus", "activityDateTime", "messageId",
    "messageInstanceId", "messageName", "messageTag", "messageLanguageCode", "clickEventLink", "viewMessageLink",
    "statusDescription", "hardBounce", "workflowId", "workflowInstanceId", "workflowBlockId", "broadcastId",
    "externalCustomerId", "sourceEventId", "sourceEventKey", "sourceEventTypeKey", "from",
]
REVENUE_ACTIVITY_COLUMNS = [
    "contactId", "externalCustomerId", "mediaType", "activityStatus", "activityDateTime", "messageInstanceId",
    "messageName", "messageTag", "messageLanguageCode", "viewMessageLink", "broadcastId", "workflowId",
    "clickEventLink", "from", "sourceEventKey", "sourceEventTypeKey",
]

# Stream tags keep the generators of different datasets independent of each other.
S_CONTACTS, S_MESSAGES, S_BROADCASTS, S_DEVICES, S_ACTIVITIES, S_ORDERS, S_EVENTS, S_REVENUE, S_REVISION = range(9)
S_BUYERS, S_ACTIVITY_ROWS = 9, 10
# Buyers. Each contact has its own purchase rate (heavy-tailed: a few buy every week, most every few months) and an
# interest that fades gradually (a logistic decline of FADE_WIDTH_DAYS-wide, centred on the contact's own day spread
# over 2025-07-01 .. 2027-07-01; a share never fades). Interest scales both the chance to order and the chance to
# open or click, so engagement foretells churn and recency alone does not explain it.
FADE_SPAN = ((date(2025, 7, 1).toordinal() - EPOCH_DAY), (date(2027, 7, 1).toordinal() - EPOCH_DAY))
FADE_WIDTH_DAYS = (7.0, 45.0)
NEVER_FADING = 0.2
OPEN_WEIGHT_FLOOR = 0.1  # a contact without interest still opens now and then
# Engagement leads to orders: each click of the last CLICK_LOOKBACK_DAYS days multiplies a contact's chance to order
# by 1 + CLICK_BOOST (adding up over clicks).
CLICK_LOOKBACK_DAYS = 3
CLICK_BOOST = 1.5
# Credit: an order is credited to the contact's last click (or, without one, last open) of the CREDIT_WINDOW_DAYS
# before it, with these chances; some orders are claimed by a second, earlier message as well.
CREDIT_WINDOW_DAYS = 3
CREDIT_CLICKED, CREDIT_OPENED, SECOND_CLAIM = 0.55, 0.2, 0.3
# Chains (indices of CHAINS) with an open, and the step of the open and of the click in a chain.
OPENED_CHAINS = np.array([2, 3, 4, 5, 6])
CLICKED_CHAINS = np.array([3, 6])
READ_STEP, CLICK_STEP = 2, 3
BROADCAST_SEND_HOURS = 2  # a broadcast's sends start within this many hours of its start (before midnight)


def api_datetime(ms: pl.Expr) -> pl.Expr:
    """Answer text of a millisecond timestamp in both forms the contract allows, mixed by row as eSputnik mixes them.

    An instant with milliseconds is written with ``.fff``; a whole second plain on even rows and with ``.000`` on odd
    ones, so equal instants come written two ways (a reader that compares the text is caught out).
    """
    moment = pl.from_epoch(ms, time_unit="ms")
    plain = (ms % 1000 == 0) & (pl.int_range(pl.len()) % 2 == 0)
    return (
        pl.when(plain)
        .then(moment.dt.strftime("%Y-%m-%dT%H:%M:%S"))
        .otherwise(moment.dt.strftime("%Y-%m-%dT%H:%M:%S%.3f"))
    )


def to_ms(moment: datetime) -> int:
    """Milliseconds since 1970-01-01 of a naive local datetime (the account never deals with time zones)."""
    return (moment - datetime(1970, 1, 1)) // timedelta(milliseconds=1)


def uuid_strings(rng: np.random.Generator, n: int) -> pl.Series:
    """n uuid4-looking strings built from random bytes in bulk (a Python loop is too slow for a million)."""
    hexed = np.frombuffer(rng.bytes(16 * n).hex().encode(), dtype=np.uint8).reshape(n, 32)
    out = np.full((n, 36), ord("-"), dtype=np.uint8)
    for src, dst in ((0, 0), (8, 9), (12, 14), (16, 19), (20, 24)):
        width = {0: 8, 8: 4, 12: 4, 16: 4, 20: 12}[src]
        out[:, dst:dst + width] = hexed[:, src:src + width]
    out[:, 14] = ord("4")
    out[:, 19] = np.frombuffer(b"89ab", dtype=np.uint8)[hexed[:, 16] % 4]
    return pl.Series(out.view("S36").ravel()).cast(pl.String)


def _pick(values: list[Any], idx: np.ndarray) -> pl.Series:
    """Values of a small lookup list at numpy indices, as a polars Series."""
    return pl.Series(values).gather(idx)


def _sorted_times(rng: np.random.Generator, day: date, n: int, whole_share: float) -> np.ndarray:
    """n sorted millisecond timestamps within the day; a share of them on whole seconds."""
    ms = rng.integers(0, DAY_MS, n)
    whole = rng.random(n) < whole_share
    ms = np.where(whole, ms // 1000 * 1000, ms)
    return np.sort(ms) + (day.toordinal() - EPOCH_DAY) * DAY_MS


def _entity_times(rng: np.random.Generator, n: int) -> np.ndarray:
    """n whole-second timestamps in the account's fixed entity period (2025 to late 2026)."""
    return ENTITY_EPOCH_MS + rng.integers(0, ENTITY_SPAN_MS // 1000, n) * 1000


def _few(rng: np.random.Generator, n: int, per: int) -> np.ndarray:
    """Mask marking 'a few' of n rows: about one in `per`, at least one when there are rows."""
    mask = np.zeros(n, dtype=bool)
    if n:
        mask[rng.choice(n, size=max(1, n // per), replace=False)] = True
    return mask


def _nest(flat: pl.DataFrame, key: str, fields: list[str], name: str) -> pl.Series:
    """Collapse flat child rows (sorted by `key`, every parent has at least one) into a list-of-struct column."""
    return flat.group_by(key, maintain_order=True).agg(pl.struct(fields).alias(name))[name]


BROKEN_DAY_MODES = ("empty", "collapsed_delivery", "unknown_status")


@dataclass(frozen=True)
class SendPlan:
    """A day's sends: chain kind and rows per send (`CHAINS`), one row of attributes per send, and each step's time."""

    chain: np.ndarray
    steps: np.ndarray
    sends: pl.DataFrame
    times: np.ndarray  # ms, sends x MAX_STEPS


@dataclass(frozen=False)
class DemoAccount:
    """A synthetic eSputnik account; size knobs and `revision` (changes made by eSputnik after the fact)."""

    seed: int = 7
    contacts: int = 2_000
    activities_per_day: int = 5_000
    orders_per_day: int = 120
    events_per_day: int = 1_500
    devices: int = 600
    revision: int = 0
    # Days served broken, to see the checks fail: ("2026-11-20", mode), mode one of BROKEN_DAY_MODES.
    broken_days: tuple[tuple[str, str], ...] = ()
    _cache: OrderedDict = field(default_factory=OrderedDict, init=False, repr=False, compare=False)
    _lock: threading.RLock = field(default_factory=threading.RLock, init=False, repr=False, compare=False)

    # ----- truth API -------------------------------------------------------------------------------------
    def rows(self, dataset: str, day: date | None = None) -> pl.DataFrame:
        """Answer rows of a dataset (API field names; datetimes as the answer's text); a fact dataset needs a day."""
        if dataset in ENTITY_DATASETS:
            frame = self.entity_frame(dataset)
        elif dataset in FACT_DATASETS:
            if day is None:
                raise ValueError(f"{dataset} is a day fact: pass a day")
            frame = self.day_frame(dataset, day)
        else:
            raise KeyError(f"unknown dataset {dataset!r}")
        return frame.select(pl.exclude("^_.*$"))

    def expected_count(self, dataset: str, day: date | None = None) -> int:
        """Distinct export rows of one of the nine export datasets (for a day, for the day facts)."""
        if dataset == "orderItems":
            return int(self.rows("orders", day)["items"].list.len().sum())
        if dataset not in EXPORT_DATASETS:
            raise KeyError(f"unknown export dataset {dataset!r}")
        return self.rows(dataset, day).height

    def day_frame(self, dataset: str, day: date) -> pl.DataFrame:
        """A day's fact rows plus internal columns (``_t`` = ms timestamp), sorted as the server pages them."""
        return self._cached(dataset, day, lambda: self._break(dataset, day, getattr(self, f"_build_{dataset}")(day)))

    def entity_frame(self, dataset: str) -> pl.DataFrame:
        """An entity's rows plus internal columns, sorted by id."""
        return self._cached(dataset, None, getattr(self, f"_build_{dataset}"))

    @property
    def knobs(self) -> tuple[int, ...]:
        """Every input of the account's values: caches key on it so a changed knob never serves stale rows."""
        return tuple(getattr(self, f.name) for f in dataclasses.fields(self) if f.init)

    def _break(self, dataset: str, day: date, frame: pl.DataFrame) -> pl.DataFrame:
        """A broken day as a live account can serve one: nothing at all, delivery collapsed, a status never seen."""
        mode = dict(self.broken_days).get(day.isoformat())
        if mode is None:
            return frame
        if mode not in BROKEN_DAY_MODES:
            raise ValueError(f"broken day mode {mode!r}: use one of {', '.join(BROKEN_DAY_MODES)}")
        if mode == "empty":
            return frame.head(0)
        if dataset != "contactActivities":
            return frame
        status = pl.col("activityStatus")
        if mode == "collapsed_delivery":  # nine in ten deliveries fail
            failed = (status == "DELIVERED") & (pl.int_range(pl.len()) % 10 != 0)
            return frame.with_columns(pl.when(failed).then(pl.lit("UNDELIVERED")).otherwise(status).alias("activityStatus"))
        renamed = (status == "UNSUBSCRIBED") | (pl.int_range(pl.len()) % 50 == 0)  # unknown_status
        return frame.with_columns(pl.when(renamed).then(pl.lit("BOUNCED")).otherwise(status).alias("activityStatus"))

    # ----- cache -----------------------------------------------------------------------------------------
    def _cached(self, dataset: str, day: date | None, build: Callable[[], pl.DataFrame]) -> pl.DataFrame:
        """Small LRU keyed by every knob, so changing a knob (e.g. revision) never serves stale rows."""
        key = (self.knobs, dataset, day)
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
            frame = build()
            self._cache[key] = frame
            # A million-row day is kept a few times at most: the plans of the days an order looks back on.
            for large, keep in (("contactActivities", 3), ("_plan", CREDIT_WINDOW_DAYS + 2)):
                big = [k for k in self._cache if k[1] == large]
                if len(big) > keep:
                    del self._cache[big[0]]
            if len(self._cache) > 64:
                self._cache.popitem(last=False)
            return frame

    def _rng(self, *key: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, *key])

    # ----- entities --------------------------------------------------------------------------------------
    def _build_contacts(self) -> pl.DataFrame:
        n = self.contacts
        rng = self._rng(S_CONTACTS)
        ids = 100_000 + np.arange(n)
        first = rng.integers(0, len(FIRST_NAMES), n)
        created = _entity_times(rng, n)
        sent = rng.integers(0, 500, n)
        received = (sent * rng.uniform(0.8, 1.0, n)).astype(np.int64)
        viewed = (received * rng.uniform(0, 0.6, n)).astype(np.int64)
        clicked = (viewed * rng.uniform(0, 0.4, n)).astype(np.int64)
        last_sent = created + rng.integers(0, 90 * DAY_MS, n) // 1000 * 1000
        base = pl.DataFrame({
            "id": ids,
            "firstName": _pick([f for f, _ in FIRST_NAMES], first),
            "lastName": _pick(LAST_NAMES, rng.integers(0, len(LAST_NAMES), n)),
            "_ascii": _pick([a for _, a in FIRST_NAMES], first),
            "_domain": _pick(DOMAINS, rng.integers(0, len(DOMAINS), n)),
            "_has_email": rng.random(n) >= 0.05,
            "_phone": rng.integers(100_000_000, 1_000_000_000, n),
            "_has_sms": rng.random(n) < 0.8,
            "_extra": rng.integers(0, 16, n),  # bit mask: mobilepush, webpush, viber, telegram
            "_null_first": rng.random(n) < 0.03,
            "_null_last": rng.random(n) < 0.08,
            "_null_ext": rng.random(n) < 0.1,
            "languageCode": _pick(LANGUAGES, rng.integers(0, len(LANGUAGES), n)),
            "contactSource": _pick(CONTACT_SOURCES, rng.integers(0, len(CONTACT_SOURCES), n)),
            "_created": created,
            "_status": _pick(EMAIL_STATUSES, rng.integers(0, len(EMAIL_STATUSES), n)),
            "_last_sent": last_sent,
            "_clicked_seen": rng.random(n) < 0.6,
            "totalSent": sent, "totalReceived": received, "totalViewed": viewed, "totalClicked": clicked,
        })
        frame = base.with_columns(
            _email=pl.when("_has_email").then(pl.format("{}.{}@{}", "_ascii", "id", "_domain")),
            _sms=pl.when("_has_sms").then(pl.format("380{}", "_phone")),
            firstName=pl.when(~pl.col("_null_first")).then("firstName"),
            lastName=pl.when(~pl.col("_null_last")).then("lastName"),
            externalCustomerId=pl.when(~pl.col("_null_ext")).then(pl.format("c-{}", "id")),
        )
        frame = self._revise_contacts(frame)
        return frame.with_columns(_email_lc=pl.col("_email").str.to_lowercase()).select(
            "id", "firstName", "lastName", "externalCustomerId", "languageCode",
            self._channels().alias("channels"),
            "contactSource",
            api_datetime(pl.col("_created")).alias("createdDate"),
            pl.when("_has_email").then("_status").alias("emailStatus"),
            api_datetime(pl.col("_last_sent")).alias("lastSentDate"),
            api_datetime(pl.col("_last_sent") + 2000).alias("lastReceivedDate"),
            api_datetime(pl.when(pl.col("totalViewed") > 0).then(pl.col("_last_sent") + 250_250))
            .alias("lastViewedDate"),
            api_datetime(
                pl.when((pl.col("totalClicked") > 0) & pl.col("_clicked_seen")).then(pl.col("_last_sent") + 300_000)
            ).alias("lastClickedDate"),
            "totalSent", "totalReceived", "totalViewed", "totalClicked", "_email", "_email_lc", "_sms",
        )

    @staticmethod
    def _channels() -> pl.Expr:
        """The contact's channels array, omitting channels the contact does not have."""
        def channel(kind: str, value: pl.Expr) -> pl.Expr:
            return pl.struct(type=pl.lit(kind), value=value)

        def extra(bit: int, value: pl.Expr) -> pl.Expr:
            return pl.when((pl.col("_extra") // bit) % 2 == 1).then(value)

        return pl.concat_list([
            channel("email", pl.col("_email")),
            channel("sms", pl.col("_sms")),
            channel("mobilepush", extra(1, pl.format("fcm:{}", "_phone"))),
            channel("webpush", extra(2, pl.format("https://push.example.com/sub/{}", "id"))),
            channel("viber", extra(4, pl.col("_sms"))),
            channel("telegram", extra(8, pl.format("tg-{}", "id"))),
        ]).list.eval(pl.element().filter(pl.element().struct.field("value").is_not_null()))

    def _revise_contacts(self, frame: pl.DataFrame) -> pl.DataFrame:
        """Revision > 0: every 7th contact gets a new last name and more sends, as eSputnik updates them."""
        if not self.revision:
            return frame
        hit = (pl.col("id") % 7 == 0)
        surname = pl.Series(LAST_NAMES).gather((np.arange(frame.height) + self.revision) % len(LAST_NAMES))
        return frame.with_columns(
            lastName=pl.when(hit).then(pl.lit(surname)).otherwise("lastName"),
            totalSent=pl.when(hit).then(pl.col("totalSent") + 3 * self.revision).otherwise("totalSent"),
        )

    def _build_messages(self) -> pl.DataFrame:
        rng = self._rng(S_MESSAGES)
        records = []
        for kind, count in MESSAGE_COUNTS.items():
            for _ in range(count):
                records.append(self._message_record(rng, kind, 300_000 + len(records)))
        schema = {
            "id": pl.Int64, "name": pl.String, "from": pl.String, "subject": pl.String, "replyTo": pl.String,
            "tags": pl.List(pl.String), "languageCode": pl.String,
            "translations": pl.List(pl.Struct({"languageCode": pl.String})), "annoyanceLevel": pl.Int64,
            "updatedDate": pl.Int64, "type": pl.String,
        }
        frame = pl.DataFrame(records, schema=schema, orient="row")
        return frame.with_columns(
            updatedDate=api_datetime(pl.col("updatedDate")),
            _mediaType=pl.col("type").replace_strict(MESSAGE_TYPES),
            _tag=pl.when(pl.col("tags").list.len() > 0).then(pl.col("tags").list.join(",")),
        )

    @staticmethod
    def _message_record(rng: np.random.Generator, kind: str, message_id: int) -> tuple:
        """One message row; only email has a reply-to, only email and push kinds have a subject."""
        name = f"{MESSAGE_NAMES[int(rng.integers(len(MESSAGE_NAMES)))]} #{message_id - 300_000}"
        sender = {"email": '"Shop" <news@shop.example.com>', "sms": "SHOP", "viber": "Shop Viber",
                  "telegram": "@shop_bot"}.get(kind)
        subject = f"{name}: 48 hours early" if kind in ("email", "mobilepush", "webpush", "appinbox") else None
        tags = sorted({TAG_POOL[int(i)] for i in rng.integers(0, len(TAG_POOL), int(rng.integers(0, 4)))})
        language = LANGUAGES[int(rng.integers(0, 3))]
        others = [code for code in LANGUAGES if code != language]
        translations = [{"languageCode": c} for c in others[: int(rng.integers(0, 3))]]
        annoyance = int(rng.integers(1, 6)) if rng.random() < 0.8 else None
        updated = int(_entity_times(rng, 1)[0]) + int(rng.integers(0, 1000)) * int(rng.random() < 0.5)
        return (message_id, name, sender, subject, "care@shop.example.com" if kind == "email" else None,
                tags, language, translations, annoyance, updated, kind)

    def _build_broadcasts(self) -> pl.DataFrame:
        n = BROADCAST_COUNT
        rng = self._rng(S_BROADCASTS)
        messages = self.entity_frame("messages").filter(pl.col("type") != "telegram")
        chosen = messages[rng.integers(0, messages.height, n)]
        groups = [sorted({int(g) for g in rng.integers(11, 41, int(k))}) for k in rng.integers(0, 4, n)]
        send_day = BROADCAST_FIRST_DAY + np.arange(n) // BROADCASTS_PER_DAY
        start = send_day * DAY_MS + rng.integers(6 * 3600, 24 * 3600 - 600, n) * 1000  # 06:00 .. 23:50
        created = start - rng.integers(1, 72, n) * 3_600_000
        updated = start + rng.integers(0, 6 * 3600, n) * 1000
        status = rng.choice(len(BROADCAST_STATUSES), n, p=[0.6, 0.1, 0.05, 0.1, 0.05, 0.05, 0.05])
        if self.revision:
            hit = np.arange(n) % 4 == 0
            status = np.where(hit, (status + self.revision) % len(BROADCAST_STATUSES), status)
            updated = np.where(hit, updated + self.revision * 3_600_000, updated)
        segment = _pick(["loyal segment", "new customers", "Київ", "Polska 🇵🇱", "all"], rng.integers(0, 5, n))
        frame = pl.DataFrame({
            "broadcastId": 7000 + np.arange(n),
            "title": pl.Series(chosen["name"]) + ", " + segment,
            "messageId": chosen["id"],
            "groupId": pl.Series(groups, dtype=pl.List(pl.Int64)),
            "_start": start, "status": _pick(BROADCAST_STATUSES, status), "mediaType": chosen["_mediaType"],
            "_created": created, "_updated": updated,
        })
        return frame.select(
            "broadcastId", "title", "messageId", "groupId", api_datetime(pl.col("_start")).alias("startDate"),
            "status", "mediaType", api_datetime(pl.col("_created")).alias("createdDate"),
            api_datetime(pl.col("_updated")).alias("updatedDate"), "_start",
        )

    def _build_devices(self) -> pl.DataFrame:
        n = self.devices
        rng = self._rng(S_DEVICES)
        contacts = self.entity_frame("contacts")
        who = contacts[rng.integers(0, max(contacts.height, 1), n)] if contacts.height else None
        ios = rng.random(n) < 0.4
        frame = pl.DataFrame({
            "deviceId": pl.Series(np.frombuffer(rng.bytes(8 * n).hex().encode(), dtype="S16")).cast(pl.String),
            "contactId": who["id"] if who is not None else pl.Series([None] * n, dtype=pl.Int64),
            "externalCustomerId": (
                who["externalCustomerId"] if who is not None else pl.Series([None] * n, dtype=pl.String)),
            "appId": _pick([42, 43, 77], rng.integers(0, 3, n)),
            "appVersion": _pick(["5.3.1", "5.4.0", "6.0.0-beta"], rng.integers(0, 3, n)),
            "category": _pick(["phone", "tablet"], (rng.random(n) < 0.15).astype(np.int64)),
            "_ios": ios,
            "_model": rng.integers(0, 3, n),
            "locale": _pick(LANGUAGES, rng.integers(0, len(LANGUAGES), n)),
            "_token": np.frombuffer(rng.bytes(12 * n).hex().encode(), dtype="S24"),
            "timeZone": _pick(["Europe/Kyiv", "Europe/Warsaw", None], rng.integers(0, 3, n)),
        }).with_columns(pl.col("_token").cast(pl.String))
        models = pl.when("_ios").then(_by_index("_model", ["iPhone 15", "iPhone 13 mini", "iPad Air"]))
        return frame.select(
            "deviceId", "contactId", "externalCustomerId", "appId", "appVersion", "category",
            models.otherwise(_by_index("_model", ["Pixel 8", "Galaxy S23", "Redmi Note 12"])).alias("deviceModel"),
            pl.when("_ios").then(pl.lit("IOS")).otherwise(pl.lit("ANDROID")).alias("os"),
            pl.when("_ios").then(pl.lit("17.5")).otherwise(pl.lit("15")).alias("osVersion"),
            "locale",
            pl.when("_ios").then(pl.format("apns:{}", "_token")).otherwise(pl.format("fcm:{}", "_token"))
            .alias("token"),
            "timeZone",
        ).sort("deviceId")

    # ----- day facts -------------------------------------------------------------------------------------
    def _build_contactActivities(self, day: date) -> pl.DataFrame:  # noqa: N802 - named after the dataset
        n = self.activities_per_day
        plan = self._plan(day)
        rng = self._rng(S_ACTIVITY_ROWS, day.toordinal())
        steps = plan.steps
        send_of_row = np.repeat(np.arange(steps.size), steps)
        step = np.arange(n) - np.repeat(np.cumsum(steps) - steps, steps)
        t = plan.times[send_of_row, step]
        order = np.argsort(t, kind="stable")
        send_of_row, step, t = send_of_row[order], step[order], t[order]
        day_index = day.toordinal() - EPOCH_DAY
        offsets = day_index * (3 * n + 1000) + np.cumsum(rng.integers(1, 3, n))
        status = _pick(STATUSES, CHAIN_STATUS[plan.chain[send_of_row], step])
        reason = rng.integers(0, len(UNDELIVERED_REASONS), n)
        rows = plan.sends[send_of_row].with_columns(
            iid=uuid_strings(rng, n), offset=pl.Series(offsets), activityStatus=status, _t=pl.Series(t),
            _reason=pl.Series(reason),
        )
        return rows.select(self._activity_columns() + [pl.col("_t")])

    def _plan(self, day: date) -> SendPlan:
        """The day's sends, their funnels and step times: what the activities show and what orders react to."""
        def build() -> SendPlan:
            rng = self._rng(S_ACTIVITIES, day.toordinal())
            chain, steps = self._funnel(rng, self.activities_per_day)
            sends = self._sends(rng, chain, day)
            times = self._step_times(rng, sends["_t0"].to_numpy(), sends["_whole"].to_numpy(), day)
            return SendPlan(chain, steps, sends, times)

        return self._cached("_plan", day, build)

    def _touches(self, day: date) -> pl.DataFrame:
        """The day's opens and clicks of messages that revenue can credit: who, when (``_t``), which message, whether
        a click, and the send (``_send``, a row of the day's plan), which orders of the next days react to."""
        def build() -> pl.DataFrame:
            plan = self._plan(day)
            sends, steps, clicked = [], [], []
            for chains, step in ((OPENED_CHAINS, READ_STEP), (CLICKED_CHAINS, CLICK_STEP)):
                found = np.flatnonzero(np.isin(plan.chain, chains) & (plan.steps > step))
                sends.append(found)
                steps.append(np.full(found.size, step))
                clicked.append(np.full(found.size, step == CLICK_STEP))
            send = np.concatenate(sends)
            touches = plan.sends.select("contactId", "mediaType", "_instance")[send].with_columns(
                _t=pl.Series(plan.times[send, np.concatenate(steps)]), _clicked=pl.Series(np.concatenate(clicked)),
                _send=pl.Series(send), _day=pl.lit(day),
            )
            return touches.filter(pl.col("mediaType").is_in(REVENUE_MEDIA)).drop("mediaType")

        return self._cached("_touches", day, build)

    @staticmethod
    def _funnel(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Chain kind per send and rows per send, with the last send cut so the day has exactly n rows."""
        chain = rng.choice(len(CHAINS), n, p=CHAIN_PROBS) if n else np.zeros(0, dtype=np.int64)
        steps = CHAIN_LENGTHS[chain]
        used = int(np.searchsorted(np.cumsum(steps), n)) + 1 if n else 0
        chain, steps = chain[:used], steps[:used].copy()
        if used:
            steps[-1] -= int(steps.sum()) - n
        return chain, steps

    def _sends(self, rng: np.random.Generator, chain: np.ndarray, day: date) -> pl.DataFrame:
        """One row per send: who, what message, broadcast or workflow, and when it started."""
        s = chain.size
        contacts = self.entity_frame("contacts")
        messages = self.entity_frame("messages")
        broadcasts = self.entity_frame("broadcasts")
        single = SINGLE_CHAINS[chain]
        day_index = day.toordinal() - EPOCH_DAY
        todays = np.flatnonzero((broadcasts["_start"].to_numpy() // DAY_MS) == day_index)  # sent on this day
        in_broadcast = (rng.random(s) < 0.6) & ~single & (todays.size > 0)
        bc = todays[rng.integers(0, max(todays.size, 1), s)] if todays.size else np.zeros(s, dtype=np.int64)
        bc_message = messages["id"].search_sorted(broadcasts["messageId"]).to_numpy()[bc]
        msg = np.where(in_broadcast, bc_message, rng.integers(0, messages.height, s))
        # A broadcast's sends go out within hours of its start, before midnight; other sends any time of the day.
        bc_start = broadcasts["_start"].to_numpy()[bc] - day_index * DAY_MS
        spread = np.minimum(BROADCAST_SEND_HOURS * 3_600_000, DAY_MS - 1 - bc_start)
        t0 = np.where(in_broadcast, bc_start + (rng.random(s) * spread).astype(np.int64), rng.integers(0, DAY_MS, s))
        t0[np.flatnonzero(~in_broadcast)[:3]] = 0  # a few activities at exactly midnight
        single_media = np.where(chain == len(CHAINS) - 1, rng.integers(3, 5, s), np.where(rng.random(s) < 0.8, 0, 6))
        # Who opens and clicks follows the contacts' interest; a send without an open goes to anyone.
        opened = np.isin(chain, OPENED_CHAINS)
        weight = OPEN_WEIGHT_FLOOR + self._interest(day_index)
        who_idx = rng.integers(0, contacts.height, s)
        who_idx[opened] = rng.choice(contacts.height, int(opened.sum()), p=weight / weight.sum())
        who = contacts[who_idx]
        msg_idx = pl.Series(np.where(single, -1, msg)).replace(-1, None)
        picked = messages.select(pl.all().gather(msg_idx))
        bc_id = pl.Series(broadcasts["broadcastId"].gather(bc)).set(pl.Series(~in_broadcast), None)
        workflow = ~in_broadcast & ~single
        return pl.DataFrame({
            "contactId": who["id"], "_email": who["_email_lc"], "_sms": who["_sms"],
            "externalCustomerId": who["externalCustomerId"],
            "mediaType": picked["_mediaType"].fill_null(_pick(MEDIA_TYPES, single_media)),
            "messageId": picked["id"], "messageName": picked["name"], "messageTag": picked["_tag"],
            "messageLanguageCode": picked["languageCode"], "_from": picked["from"],
            "broadcastId": bc_id,
            "_workflow": workflow,
            "_wf_id": 5000 + rng.integers(0, 30, s), "_wf_instance": uuid_strings(rng, s),
            "_block": rng.integers(1, 10, s), "_event": rng.integers(10_000, 99_999_999, s),
            "_event_type": _pick(EVENT_TYPES, rng.integers(0, len(EVENT_TYPES), s)),
            "_instance": np.where(in_broadcast, 9_000_000 + bc * 17, 20_000_000 + rng.integers(0, 10**8, s)),
            "_single": single,
            "_t0": t0, "_whole": rng.random(s) < 0.4,
            "_product": rng.integers(1, SKUS + 1, s), "_utm": rng.integers(0, len(UTM_CAMPAIGNS) + 2, s),
        })

    @staticmethod
    def _step_times(rng: np.random.Generator, t0: np.ndarray, whole: np.ndarray, day: date) -> np.ndarray:
        """Time of every funnel step of every send; each step follows the last and stays within the day."""
        times = np.empty((t0.size, MAX_STEPS), dtype=np.int64)
        times[:, 0] = t0
        for k in range(1, MAX_STEPS):
            rest = DAY_MS - 1 - times[:, k - 1]
            times[:, k] = times[:, k - 1] + (rest * rng.uniform(0, STEP_DELAY[k], t0.size)).astype(np.int64)
        times = np.where(whole[:, None], times // 1000 * 1000, times)
        return times + (day.toordinal() - EPOCH_DAY) * DAY_MS

    @staticmethod
    def _activity_columns() -> list[pl.Expr]:
        """The activity answer's fields from per-row send attributes."""
        status, media, wf = pl.col("activityStatus"), pl.col("mediaType"), pl.col("_workflow")
        undelivered = status == "UNDELIVERED"
        utm = pl.col("_utm")
        link = pl.format("https://shop.example.com/p/sku-{}?utm_source=esputnik", "_product")
        with_campaign = pl.concat_str([link, pl.lit("&utm_campaign="), _by_index("_utm", UTM_CAMPAIGNS)])
        click = pl.when(utm >= len(UTM_CAMPAIGNS)).then(
            pl.format("https://shop.example.com/p/sku-{}", "_product")).otherwise(with_campaign)
        view = pl.format("https://esputnik.com/view/{}-{}", "_instance", "contactId")
        return [
            "iid", "offset", "contactId",
            pl.when(media == "Email").then("_email").alias("email"),
            pl.when(media == "Sms").then("_sms").alias("sms"),
            "mediaType", "activityStatus", api_datetime(pl.col("_t")).alias("activityDateTime"),
            "messageId", pl.when(~pl.col("_single")).then("_instance").alias("messageInstanceId"),
            "messageName", "messageTag", "messageLanguageCode",
            pl.when(status == "CLICKED").then(click).alias("clickEventLink"),
            pl.when((media == "Email") & ~pl.col("_single")).then(view).alias("viewMessageLink"),
            pl.when(undelivered).then(_by_index("_reason", [r for r, _ in UNDELIVERED_REASONS]))
            .alias("statusDescription"),
            pl.when(undelivered).then(_by_index("_reason", [h for _, h in UNDELIVERED_REASONS])).alias("hardBounce"),
            pl.when(wf).then("_wf_id").alias("workflowId"),
            pl.when(wf).then("_wf_instance").alias("workflowInstanceId"),
            pl.when(wf).then(pl.format("block-{}", "_block")).alias("workflowBlockId"),
            "broadcastId", "externalCustomerId",
            pl.when(wf).then(pl.format("ev-{}", "_event")).alias("sourceEventId"),
            pl.when(wf).then(pl.col("contactId").cast(pl.String)).alias("sourceEventKey"),
            pl.when(wf).then("_event_type").alias("sourceEventTypeKey"),
            pl.when(media.is_in(["Viber", "Sms"])).then("_from").alias("from"),
        ]

    def _build_orders(self, day: date) -> pl.DataFrame:
        m = self.orders_per_day
        rng = self._rng(S_ORDERS, day.toordinal())
        contacts = self.entity_frame("contacts")
        t = _sorted_times(rng, day, m, whole_share=1.0)
        ids = 5_500_000 + (day.toordinal() - EPOCH_DAY) * m + np.arange(m)
        counts = rng.integers(1, 5, m)
        items = self._order_items(rng, ids, counts)
        subtotal = items.group_by("_order", maintain_order=True).agg((pl.col("cost") * pl.col("quantity")).sum())
        subtotal_np = subtotal["cost"].to_numpy() if m else np.zeros(0)
        discount = np.where(rng.random(m) < 0.3, np.round(subtotal_np * 0.1, 2), 0.0)
        total = np.round(subtotal_np - discount, 2)
        status = rng.choice(len(ORDER_STATUSES), m, p=[0.15, 0.25, 0.4, 0.1, 0.1])
        if self.revision:
            hit = np.arange(m) % 5 == 0
            total = np.where(hit, np.round(total + 5.0 * self.revision, 2), total)
            status = np.where(hit, (status + self.revision) % len(ORDER_STATUSES), status)
        who = contacts[self._buyers(rng, day, m)]
        frame = pl.DataFrame({
            "orderId": ids, "externalOrderId": pl.Series(ids - 5_000_000).cast(pl.String),
            "externalCustomerId": who["externalCustomerId"], "contactId": who["id"],
            "status": _pick(ORDER_STATUSES, status), "_t": t, "_created": t + rng.integers(2, 31, m) * 1000,
            "totalCost": total, "discount": discount,
            "currency": _pick(["UAH", "UAH", "PLN", "EUR"], rng.integers(0, 4, m)),
            "email": who["_email_lc"], "phone": who["_sms"], "firstName": who["firstName"], "lastName": who["lastName"],
            "deliveryMethod": _pick(["courier", "pickup", "nova_poshta", None], rng.integers(0, 4, m)),
            "paymentMethod": _pick(["card", "cash", None], rng.integers(0, 3, m)),
            "deliveryAddress": _pick(DELIVERY_ADDRESSES + [None], rng.integers(0, 5, m)),
        })
        fields = ["externalItemId", "name", "description", "quantity", "cost", "url", "imageUrl"]
        nested = _nest(items, "_order", fields, "items") if m else pl.Series("items", [], pl.List(pl.Struct(
            {f: items.schema[f] for f in fields})))
        return frame.with_columns(
            externalOrderId="SO-" + pl.col("externalOrderId"),
            date=api_datetime(pl.col("_t")), createdDate=api_datetime(pl.col("_created")), items=nested,
        ).select(
            "orderId", "externalOrderId", "externalCustomerId", "contactId", "status", "date", "createdDate",
            "totalCost", "discount", "currency", "email", "phone", "firstName", "lastName", "deliveryMethod",
            "paymentMethod", "deliveryAddress", "items", "_t",
        )

    def _buyers(self, rng: np.random.Generator, day: date, m: int) -> np.ndarray:
        """Row numbers of the contacts placing the day's m orders: drawn by each contact's own rate, times its interest
        that day, times the boost of its clicks of the last CLICK_LOOKBACK_DAYS days."""
        profile = self._profile()
        day_index = day.toordinal() - EPOCH_DAY
        contacts = self.entity_frame("contacts")["id"]
        recent = pl.concat([
            self._touches(day - timedelta(days=k)).filter("_clicked").select("contactId")
            for k in range(1, CLICK_LOOKBACK_DAYS + 1)
        ])
        clicks = np.bincount(contacts.search_sorted(recent["contactId"]).to_numpy(), minlength=contacts.len())
        weights = profile["rate"].to_numpy() * self._interest(day_index) * (1.0 + CLICK_BOOST * clicks)
        if m == 0 or weights.sum() == 0:
            return rng.integers(0, max(contacts.len(), 1), m)
        return rng.choice(contacts.len(), m, p=weights / weights.sum())

    def _interest(self, day_index: int) -> np.ndarray:
        """Each contact's interest on a day (days since 1970), in (0, 1]: a gradual logistic fade around its own day."""
        profile = self._profile()
        z = (day_index - profile["fade_day"].to_numpy()) / profile["fade_width"].to_numpy()
        return 1.0 / (1.0 + np.exp(np.clip(z, -50, 50)))

    def _profile(self) -> pl.DataFrame:
        """Per contact: its purchase rate, the day its interest has half faded, and how gradually it fades."""
        def build() -> pl.DataFrame:
            rng = self._rng(S_BUYERS)
            n = self.contacts
            fade = rng.uniform(FADE_SPAN[0], FADE_SPAN[1], n)
            return pl.DataFrame({
                "rate": rng.gamma(0.5, 1.0, n),
                "fade_day": np.where(rng.random(n) < NEVER_FADING, FADE_SPAN[1] + 10_000.0, fade),
                "fade_width": rng.uniform(*FADE_WIDTH_DAYS, n),
            })

        return self._cached("_profile", None, build)

    @staticmethod
    def _order_items(rng: np.random.Generator, ids: np.ndarray, counts: np.ndarray) -> pl.DataFrame:
        """Flat item rows of the day's orders, in order of the orders."""
        k = int(counts.sum())
        groups = -(-SKUS // SKU_GROUP_SIZE)
        group = np.repeat(rng.integers(0, groups, ids.size), counts)  # the order's group, for each of its items
        in_group = 1 + np.minimum(group * SKU_GROUP_SIZE + rng.integers(0, SKU_GROUP_SIZE, k), SKUS - 1)
        sku = np.where(rng.random(k) < SAME_GROUP_ITEM, in_group, rng.integers(1, SKUS + 1, k))
        product = sku % len(PRODUCTS)
        return pl.DataFrame({
            "_order": np.repeat(ids, counts), "_sku": sku,
            "name": _pick([p for p, _ in PRODUCTS], product), "description": _pick([d for _, d in PRODUCTS], product),
            "quantity": rng.integers(1, 4, k), "cost": np.round(rng.uniform(50, 3000, k), 1),
        }).select(
            "_order", pl.format("SKU-{}", "_sku").alias("externalItemId"), "name", "description", "quantity", "cost",
            pl.format("https://shop.example.com/p/sku-{}", "_sku").alias("url"),
            pl.format("https://shop.example.com/i/{}.jpg", "_sku").alias("imageUrl"),
        )

    def _build_events(self, day: date) -> pl.DataFrame:
        e = self.events_per_day
        rng = self._rng(S_EVENTS, day.toordinal())
        contacts = self.entity_frame("contacts")
        ids = 77_000_000 + (day.toordinal() - EPOCH_DAY) * e + np.arange(e)
        counts = np.where(_few(rng, e, 500), 60, rng.integers(2, 7, e))
        long_value = _few(rng, e, 500)
        who = contacts[rng.integers(0, contacts.height, e)]
        anonymous = rng.random(e) < 0.05
        frame = pl.DataFrame({
            "eventId": ids, "eventTypeKey": _pick(EVENT_TYPES, rng.integers(0, len(EVENT_TYPES), e)),
            "_key": who["_email_lc"].fill_null(who["id"].cast(pl.String)),
            "contactId": who["id"], "_anon": anonymous, "_t": _sorted_times(rng, day, e, whole_share=0.7),
        })
        params = self._event_params(rng, ids, counts, long_value)
        nested = _nest(params, "_event", ["name", "value"], "params") if e else pl.Series(
            "params", [], pl.List(pl.Struct({"name": pl.String, "value": pl.String})))
        return frame.with_columns(params=nested).select(
            "eventId", "eventTypeKey",
            pl.when("_anon").then(pl.format("anon-{}", "eventId")).otherwise("_key").alias("keyValue"),
            pl.when(~pl.col("_anon")).then("contactId").alias("contactId"),
            api_datetime(pl.col("_t")).alias("occurred"), "params", "_t",
        )

    @staticmethod
    def _event_params(rng: np.random.Generator, ids: np.ndarray, counts: np.ndarray,
                      long_value: np.ndarray) -> pl.DataFrame:
        """Flat params of the day's events: named per position, a few events with a value over 300 characters."""
        k = int(counts.sum())
        position = np.arange(k) - np.repeat(np.cumsum(counts) - counts, counts)
        names = PARAM_NAMES + [f"attr{j:02d}" for j in range(len(PARAM_NAMES), 60)]
        sku = pl.Series(rng.integers(1, 60, k)).cast(pl.String)
        flat = pl.DataFrame({
            "_event": np.repeat(ids, counts), "_pos": position, "_sku": sku,
            "_long": np.repeat(long_value, counts) & (position == 1),
            "_cat": _pick(CATEGORIES, rng.integers(0, len(CATEGORIES), k)),
        })
        generic = pl.format("значення {} ✓", "_sku")
        value = (
            pl.when(pl.col("_long")).then(pl.lit(LONG_TEXT) + pl.col("_sku"))
            .when(pl.col("_pos") == 0).then(pl.format("SKU-{}", "_sku"))
            .when(pl.col("_pos") == 1).then(pl.format("{}.5", "_sku"))
            .when(pl.col("_pos") == 2).then(pl.lit("UAH"))
            .when(pl.col("_pos") == 3).then("_cat")
            .when(pl.col("_pos") == 5).then(pl.format("https://shop.example.com/p/{}", "_sku"))
            .otherwise(generic)
        )
        return flat.select("_event", _by_index("_pos", names).alias("name"), value.alias("value"))

    def _build_revenue(self, day: date) -> pl.DataFrame:
        """The day's orders credited to the contact's own last click (or open) of the CREDIT_WINDOW_DAYS before each;
        some also claimed by a second, earlier message: several rows for one orderId."""
        orders = self.day_frame("orders", day)
        rng = self._rng(S_REVENUE, day.toordinal())
        draws = pl.DataFrame({
            "orderId": orders["orderId"], "_u": rng.random(orders.height), "_second": rng.random(orders.height),
        })
        touches = pl.concat([self._touches(day - timedelta(days=k)) for k in range(CREDIT_WINDOW_DAYS + 1)])
        window = CREDIT_WINDOW_DAYS * DAY_MS
        before = orders.select("orderId", "contactId", pl.col("_t").alias("_order_t")).join(
            touches, on="contactId"
        ).filter((pl.col("_t") < pl.col("_order_t")) & (pl.col("_t") >= pl.col("_order_t") - window))
        # One candidate per message: its latest touch, a click ranking above an open.
        latest = before.sort("_clicked", "_t", "_instance").unique(["orderId", "_instance"], keep="last").sort(
            "orderId", "_clicked", "_t", "_instance", descending=True
        )
        ranked = latest.with_columns(rank=pl.int_range(pl.len()).over("orderId")).join(draws, on="orderId")
        chance = pl.when(pl.col("_clicked").first().over("orderId")).then(CREDIT_CLICKED).otherwise(CREDIT_OPENED)
        second = (pl.col("rank") == 1) & (pl.col("_second") < SECOND_CLAIM)
        credited = ranked.filter((pl.col("_u") < chance) & ((pl.col("rank") == 0) | second))
        touch_rows = pl.concat([self._touch_rows(touch_day, part) for (touch_day,), part in
                                credited.partition_by("_day", as_dict=True, maintain_order=True).items()]
                               or [self._touch_rows(day, credited)])
        return touch_rows.join(
            orders.select("orderId", "externalOrderId", pl.col("date").alias("orderDate"), "totalCost", "currency"),
            on="orderId",
        ).sort("_order_t", "orderId", "rank").select(
            "orderId", "externalOrderId", "orderDate", "totalCost", "currency", *REVENUE_ACTIVITY_COLUMNS,
            pl.col("_order_t").alias("_t"),
        )

    def _touch_rows(self, day: date, credited: pl.DataFrame) -> pl.DataFrame:
        """The activity fields (as revenue carries them) of credited touches of one day, beside their order keys."""
        sends = self._plan(day).sends[credited["_send"].to_numpy()]
        status = pl.Series(np.where(credited["_clicked"].to_numpy(), "CLICKED", "READ"), dtype=pl.String)
        rows = sends.with_columns(
            activityStatus=status, _t=credited["_t"], iid=pl.lit(None, pl.String), offset=pl.lit(None, pl.Int64),
            _reason=pl.lit(0),
        ).select(self._activity_columns())
        return pl.concat([credited.select("orderId", "_order_t", "rank"), rows.select(REVENUE_ACTIVITY_COLUMNS)],
                         how="horizontal")


def _by_index(column: str, values: list[Any]) -> pl.Expr:
    """Lookup of a small list by an integer column (wrapped around, as branches of `when` see every row)."""
    return pl.lit(pl.Series(values)).gather(pl.col(column) % len(values))
