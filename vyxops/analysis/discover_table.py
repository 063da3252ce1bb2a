"""Discovery of the provisioning table: which table, which column holds what, which status word means what.

Read from PostgREST's OpenAPI root (tables, columns, types, enum values, the primary
key) and the newest rows of each table, matched against what Fly says of the app's
machines. Each choice comes with the evidence for it. Values decide first (a column
holding the app's machine ids is the machine-id column, whatever its name); where no
row shows anything (a table still empty), a column keeps the seed team's name when
the table has it, else a name that says what it holds, and the evidence says so.
Two candidates that fit equally stop discovery (:class:`~vyxops.core.contract.AmbiguousContract`).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from vyxops.core.checks import TABLE_NAME
from vyxops.core.contract import (
    FAILED,
    ROLE_WORDS,
    ROLES,
    RUNNING,
    SEED,
    STARTING,
    STOPPED,
    AmbiguousContract,
    Columns,
    StatusWords,
    Table,
)
from vyxops.core.facts import FLY_REGIONS, STARTED, read_exit_event
from vyxops.core.timeutil import FLY_EVENT_UNIT, to_utc

MACHINE_ID = re.compile(r"^[0-9a-f]{14}$")  # a Fly machine id
IMAGE_REF = re.compile(r"^[a-z0-9.\-]+(?::\d+)?/[^\s:@]+(?::[\w.\-]+|@sha256:[0-9a-f]{64})$")
#: Names that say what a column holds, for columns no row could show (checked as whole words of the name).
NAMES = {
    "machine_id": ("machine", "vm", "instance"),
    "user": ("user", "owner", "account", "customer", "member"),
    "status": ("status", "state", "phase"),
    "created_at": ("created", "inserted"),
    "updated_at": ("updated", "modified", "changed"),
    "error": ("error", "reason", "failure"),
    "app": ("app",),
    "image": ("image",),
    "region": ("region",),
}


@dataclass
class TableShape:
    """One table as PostgREST describes it, with its newest rows."""

    name: str
    columns: dict[str, dict[str, Any]]  # column -> its OpenAPI property (type, format, enum, description)
    rows: list[dict[str, Any]] = field(default_factory=list)

    @property
    def key(self) -> str:
        pk = [c for c, p in self.columns.items() if "<pk/>" in str(p.get("description") or "")]
        return pk[0] if len(pk) == 1 else "id" if "id" in self.columns else ""

    def times(self) -> list[str]:
        return [c for c, p in self.columns.items() if "timestamp" in str(p.get("format") or "")]

    def values(self, column: str) -> list[object]:
        return [r.get(column) for r in self.rows if r.get(column) is not None]


def tables_of(openapi: dict[str, Any]) -> list[TableShape]:
    """The tables (and views) PostgREST's OpenAPI describes, with their columns: Swagger 2.0's ``definitions``
    (PostgREST's), else OpenAPI 3's ``components.schemas``; a part of another shape describes nothing."""
    components = openapi.get("components")
    defs = openapi.get("definitions") or (components.get("schemas") if isinstance(components, dict) else None)
    if not isinstance(defs, dict):
        return []
    return [
        TableShape(str(name), {str(c): p for c, p in d["properties"].items() if isinstance(p, dict)})
        for name, d in defs.items()
        if isinstance(d, dict) and isinstance(d.get("properties"), dict) and TABLE_NAME.fullmatch(str(name))
    ]  # a name that would not stay one path segment (/rest/v1/<name>) is never read


def order_column(t: TableShape) -> str | None:
    """The column to read a table's newest rows by: a creation time, else any time, else its key."""
    times = t.times()
    named = [c for c in times if _named(c, "created_at")]
    return (named or times or [t.key])[0] or None


def _named(column: str, what: str) -> bool:
    words = set(re.split(r"[^a-z0-9]+", column.lower()))
    return any(w in words or column.lower().startswith(w) for w in NAMES[what])


@dataclass
class Seen:
    """What Fly says of the apps' machines, for matching rows: ids, users, apps, images."""

    machine_ids: set[str]
    metadata: dict[str, dict[str, str]]  # machine id -> its metadata (flyctl's own fly_* keys left out)
    apps: set[str]
    machines: dict[str, dict[str, Any]]  # machine id -> the Machines API object


def choose_table(tables: list[TableShape], seen: Seen) -> tuple[TableShape, str]:
    """The table whose column holds the apps' machine ids (else ids shaped like Fly's), with the evidence."""
    scored = []
    for t in tables:
        best = max((_id_hits(t, c, seen) for c in t.columns), default=(0, 0))
        scored.append((best, t))
    top = max((s for s, _ in scored), default=(0, 0))
    if top > (0, 0):
        winners = [t for s, t in scored if s == top]
        if len(winners) > 1:
            raise AmbiguousContract(
                "table", [(t.name, f"{top[0]} of its rows name the apps' machines") for t in winners]
            )
        what = (
            f"{top[0]} of its newest rows name the app's machines" if top[0] else f"{top[1]} rows hold Fly machine ids"
        )
        return winners[0], f"table {winners[0].name}: {what}"
    seeded = [t for t in tables if {SEED.columns.machine_id, SEED.columns.status} <= set(t.columns)]
    if len(seeded) == 1:
        return seeded[0], f"table {seeded[0].name}: no row names a machine yet; it has the seed team's columns"
    if len(tables) == 1:
        return tables[0], f"table {tables[0].name}: the only table the API describes (no row names a machine yet)"
    raise AmbiguousContract("table", [(t.name, "no row names a machine") for t in tables])


def _id_hits(t: TableShape, column: str, seen: Seen) -> tuple[int, int]:
    values = [v for v in t.values(column) if isinstance(v, str)]
    return sum(v in seen.machine_ids for v in values), sum(bool(MACHINE_ID.match(v)) for v in values)


def choose_columns(t: TableShape, seen: Seen) -> tuple[Columns, dict[str, str]]:
    """Which column holds what, each with the evidence for it."""
    why: dict[str, str] = {}
    mid = _by_values(t, "machine_id", lambda c: _id_hits(t, c, seen), why, required=True)
    used = {mid}
    app = _by_values(t, "app", lambda c: (_hits(t.values(c), seen.apps), 0), why, used=used)
    image = _by_values(t, "image", lambda c: (_matching(t.values(c), IMAGE_REF), 0), why, used=used)
    user = _by_values(t, "user", lambda c: (_user_hits(t, mid, c, seen), 0), why, used=used)
    region = _by_values(t, "region", lambda c: (_hits(t.values(c), FLY_REGIONS), 0), why, used=used)
    status = _status_column(t, why, used)
    created, updated = _time_columns(t, why)
    used |= {created, updated}
    error = _by_values(t, "error", lambda c: (0, 0), why, used=used)
    columns = Columns(t.key, mid, app, user, image, status, created, updated, error, region)
    why["key"] = f"{t.key}: the table's primary key" if t.key else "no primary key: fixes guard by machine id"
    return columns, why


def _by_values(
    t: TableShape,
    what: str,
    score: Any,
    why: dict[str, str],
    *,
    used: set[str] | None = None,
    required: bool = False,
) -> str:
    """The column whose rows show it holds ``what`` (``score``), else the seed's name, else a telling name."""
    taken = used if used is not None else set()
    texts = _texts(t, taken, key_ok=required)
    scored = [(score(c), c) for c in texts]
    top = max((s for s, _ in scored), default=(0, 0))
    if top > (0, 0):
        winners = [c for s, c in scored if s == top]
        if len(winners) > 1:  # values tie: a name that says it (the seed's, or a telling one) decides, else stop
            seed = getattr(SEED.columns, what)
            named = [c for c in winners if c == seed] or [c for c in winners if _named(c, what)]
            if len(named) != 1:
                raise AmbiguousContract(f"table.columns.{what}", [(c, f"{top[0] or top[1]} rows") for c in winners])
            winners = named
        why[what] = f"{winners[0]}: {top[0] or top[1]} of the newest rows show it holds the {what.replace('_', ' ')}"
        taken.add(winners[0])
        return winners[0]
    return _by_name(t, what, texts, why, taken, required)


def _by_name(t: TableShape, what: str, texts: list[str], why: dict[str, str], taken: set[str], required: bool) -> str:
    seed = str(getattr(SEED.columns, what))
    if seed and seed in texts:
        why[what] = f"{seed}: no row shows it; the table has the seed team's column of that name"
        taken.add(seed)
        return seed
    named = [c for c in texts if _named(c, what)]
    if len(named) == 1:
        why[what] = f"{named[0]}: no row shows it; its name says it"
        taken.add(named[0])
        return named[0]
    if len(named) > 1 or required:
        raise AmbiguousContract(f"table.columns.{what}", [(c, "its name") for c in named])
    why[what] = f"none: no column of {t.name} holds the {what.replace('_', ' ')}"
    return ""


def _hits(values: Iterable[object], known: Iterable[str]) -> int:
    wanted = set(known)
    return sum(1 for v in values if isinstance(v, str) and v in wanted)


def _matching(values: Iterable[object], pattern: re.Pattern[str]) -> int:
    return sum(1 for v in values if isinstance(v, str) and pattern.match(v))


def _user_hits(t: TableShape, mid: str, column: str, seen: Seen) -> int:
    """Rows whose ``column`` equals the user their machine's metadata names."""
    return sum(
        1
        for r in t.rows
        if isinstance(r.get(column), str) and r.get(column) in seen.metadata.get(str(r.get(mid)), {}).values()
    )


def user_key(t: TableShape, columns: Columns, seen: Seen) -> str | None:
    """The machines' metadata key that holds the row's user: where the function copies the request's user."""
    keys: Counter[str] = Counter()
    for r in t.rows:
        user = r.get(columns.user)
        for key, value in seen.metadata.get(str(r.get(columns.machine_id)), {}).items():
            keys[key] += isinstance(user, str) and value == user
    best = keys.most_common(2)
    return best[0][0] if best and best[0][1] and (len(best) == 1 or best[1][1] < best[0][1]) else None


def _status_column(t: TableShape, why: dict[str, str], used: set[str]) -> str:
    enums = [c for c, p in t.columns.items() if isinstance(p.get("enum"), list) and c not in used]
    if len(enums) == 1:
        why["status"] = f"{enums[0]}: the table's enum column ({', '.join(map(str, t.columns[enums[0]]['enum']))})"
        used.add(enums[0])
        return enums[0]
    texts = [c for c in _texts(t, used) if c in enums or not enums]
    worded = [c for c in texts if _status_like(t.values(c))]
    if len(worded) == 1:
        words = sorted({str(v) for v in t.values(worded[0])})
        why["status"] = (
            f"{worded[0]}: of the text columns left, the only one holding a handful of words ({', '.join(words)})"
        )
        used.add(worded[0])
        return worded[0]
    return _by_name(t, "status", worded or texts, why, used, True)


#: A status word: a lower-case identifier (no spaces, no digits first), as teams name their states.
STATUS_WORD = re.compile(r"^[a-z][a-z_\-]{1,30}$")


def _status_like(values: list[object]) -> bool:
    """Whether a column's values look like status words: a few distinct lower-case identifiers, nothing else."""
    words = {v for v in values if isinstance(v, str)}
    repeated = len(values) > len(words) or len(words) <= 3
    return bool(words) and len(words) <= 12 and all(STATUS_WORD.match(w) for w in words) and repeated


def _texts(t: TableShape, taken: set[str], key_ok: bool = False) -> list[str]:
    """The table's text-like columns not taken yet (not a time; not its key unless ``key_ok``)."""
    return [
        c
        for c, p in t.columns.items()
        if c not in taken and (key_ok or c != t.key) and p.get("type") in ("string", None)
        and "timestamp" not in str(p.get("format") or "")
    ]  # fmt: skip


def _time_columns(t: TableShape, why: dict[str, str]) -> tuple[str, str]:
    """(created_at, updated_at): of two time columns, the one never later than the other is the creation."""
    times = t.times()
    if not times:
        raise AmbiguousContract("table.columns.created_at", [])
    if len(times) == 1:
        why["created_at"], why["updated_at"] = f"{times[0]}: the table's only time column", "none"
        return times[0], ""
    created = [c for c in times if _named(c, "created_at")]
    updated = [c for c in times if _named(c, "updated_at")]
    if len(created) == 1 and len(updated) == 1:
        why["created_at"] = f"{created[0]}: its name, and no row's is later than {updated[0]}"
        why["updated_at"] = f"{updated[0]}: its name; rows change it when their status changes"
        return created[0], updated[0]
    a, b = times[0], times[1]
    order = [(x, y) for r in t.rows if (x := to_utc(r.get(a))) is not None and (y := to_utc(r.get(b))) is not None]
    if order and all(x <= y for x, y in order) and any(x < y for x, y in order):
        why["created_at"], why["updated_at"] = f"{a}: never later than {b}", f"{b}: later than {a} in changed rows"
        return a, b
    if order and all(y <= x for x, y in order) and any(y < x for x, y in order):
        why["created_at"], why["updated_at"] = f"{b}: never later than {a}", f"{a}: later than {b} in changed rows"
        return b, a
    raise AmbiguousContract("table.columns.created_at", [(c, "a time column") for c in times])


# --------------------------------------------------------------------------- status words


def choose_status(t: TableShape, columns: Columns, seen: Seen, seed_like: bool = False) -> tuple[StatusWords, str]:
    """The status words by role: from what rows did with their machines, then from the words' names."""
    prop = t.columns.get(columns.status) or {}
    enum = [str(w) for w in prop.get("enum") or []]
    values = [str(v) for v in t.values(columns.status)]
    words = list(dict.fromkeys(enum + [w for w, _ in Counter(values).most_common()]))
    votes = _behaviour(t, columns, seen)
    roles: dict[str, list[str]] = {r: [] for r in ROLES}
    said: list[str] = []
    for word in words:
        shown = votes.get(word)
        if shown:
            role = shown.most_common(1)[0][0]
            roles[role].append(word)
            said.append(f"{word} = {role} ({shown[role]} row(s) show it)")
            continue
        named = _named_role(word)
        if named:
            roles[named].append(word)
            said.append(f"{word} = {named} (its name; no row shows it)")
        else:
            said.append(f"{word}: no role (terminal)")
    if enum and not roles[STARTING] and not votes.get(enum[0]) and not _named_role(enum[0]):
        roles[STARTING].append(enum[0])  # no row shows one: the enum's first label, where its lifecycle begins
        said.remove(f"{enum[0]}: no role (terminal)")
        said.append(f"{enum[0]} = {STARTING} (the enum's first label: no row or name shows another)")
    if not enum and seed_like:  # the seed team's text column: a role no row shows keeps its word
        for role in ROLES:
            if not roles[role]:
                roles[role] = list(getattr(SEED.status, role))
                said.append(f"{'/'.join(roles[role])} = {role} (the seed team's word: the column is text)")
    if not roles[STARTING]:
        # Every row has moved on from the word it was written with: no row judged stuck could be told (a word
        # mapped to no role is terminal); the evidence says so, and declaring status.starting mends it.
        said.append(f"{STARTING}: unknown (no row still has the word it was written with); declare status.starting")
    source = "the enum" if enum else "the column's values"
    evidence = "\n".join([f"words from {source} of {columns.status}", *said])
    return StatusWords(*(tuple(_by_use(roles[r], values)) for r in ROLES)), evidence


def _named_role(word: str) -> str | None:
    """The role a status word's name says, or None."""
    return next((r for r, names in ROLE_WORDS.items() if word.lower() in names), None)


def _by_use(words: list[str], values: list[str]) -> list[str]:
    """The words of one role, the most used first (the first is the one written)."""
    used = Counter(values)
    return sorted(words, key=lambda w: -used[w])


def _behaviour(t: TableShape, c: Columns, seen: Seen) -> dict[str, Counter[str]]:
    """Votes (word -> role -> rows) from rows and their machines' stories."""
    votes: dict[str, Counter[str]] = {}
    for r in t.rows:
        word, mid = r.get(c.status), r.get(c.machine_id)
        if not isinstance(word, str):
            continue
        role = _role_shown(r, c, seen.machines.get(mid) if isinstance(mid, str) else None)
        if role is not None:
            votes.setdefault(word, Counter())[role] += 1
    return votes


def _role_shown(row: dict[str, Any], c: Columns, machine: dict[str, Any] | None) -> str | None:
    """The role a row's status shows from its machine's story, or None when it shows none.

    starting: the word the function wrote, on a row nothing has updated since (or, in a table without
    updated_at, whose machine never started); running: updated after the machine started, and not just
    before a clean exit; stopped: updated just before a clean exit (the app marks its row, then exits);
    failed: a row the function wrote with no machine (a failed provisioning).
    """
    if not row.get(c.machine_id):
        return FAILED
    if machine is None:
        return None
    created, updated = to_utc(row.get(c.created_at)), to_utc(row.get(c.updated_at)) if c.updated_at else None
    events = [e for e in machine.get("events") or [] if isinstance(e, dict)]
    started = [to_utc(e.get("timestamp"), FLY_EVENT_UNIT) for e in events if e.get("status") == STARTED]
    starts = [t for t in started if t]
    if updated is None:
        return STARTING if not starts else None
    if created is not None and updated == created:
        return STARTING
    # An exit's code as fly-go reads it (either of its forms); an exit that reports none was clean (omitempty).
    exits = sorted(
        (t, x.exit_code)
        for e in events
        if (x := read_exit_event(e)) is not None and (t := to_utc(e.get("timestamp"), FLY_EVENT_UNIT)) is not None
    )
    later = [(t, code) for t, code in exits if t >= updated]
    if later and later[0][1] in (0, None) and (later[0][0] - updated).total_seconds() <= 30:
        return STOPPED
    began = [t for t in starts if t <= updated]
    if began and not any(max(began) < t <= updated for t, _ in exits):
        return RUNNING  # the machine was up when the row changed
    return None


def table_contract(t: TableShape, seen: Seen, seed_like: bool = False) -> tuple[Table, StatusWords, dict[str, str]]:
    """The table, its columns and status words, with the evidence for each key. ``seed_like``: the function is the
    seed team's; its text status column then keeps the seed's words for roles no row shows."""
    columns, why = choose_columns(t, seen)
    status, said = choose_status(t, columns, seen, seed_like and columns.machine_id == SEED.columns.machine_id)
    evidence = {f"table.columns.{k}": v for k, v in why.items()}
    evidence["status"] = said
    return Table(t.name, columns), status, evidence
