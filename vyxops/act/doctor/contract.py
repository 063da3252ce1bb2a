"""Contract: the pipeline contract resolves for ``--app`` (declared or discovered); an ambiguity names the key."""

from __future__ import annotations

from collections.abc import Iterator

from vyxops.act.doctor.model import Doctor, Outcome, problem
from vyxops.core.errors import ApiError, TransportError


def check_contract(d: Doctor) -> Iterator[Outcome]:
    from vyxops.analysis.discover import resolve_contract
    from vyxops.core.contract import AmbiguousContract, declared_contract

    s = d.session
    assert s is not None
    if not d.app:
        found = declared_contract(d.contract)
        if found is None:
            yield Outcome("contract", "pipeline", "skipped", "none declared: pass --app APP to check discovery")
        else:
            yield Outcome("contract", "pipeline", "ok", _contract_said(found))
        return
    try:
        contract = resolve_contract(s, [d.app], declared=d.contract)
    except AmbiguousContract as exc:
        yield problem("contract", f"pipeline.{exc.key}", exc.message.partition(": ")[2] or exc.message,
                       exc.hint or f"declare `{exc.key}` under [pipeline] in vyxops.toml")  # fmt: skip
        return
    except (ApiError, TransportError) as exc:
        yield problem("contract", "pipeline", f"discovery could not read the platforms: {exc.message}",
                       "fix the problems above, or declare the contract in vyxops.toml (`vyxops init`)")  # fmt: skip
        return
    d.pipeline = contract
    yield Outcome("contract", "pipeline", "ok", _contract_said(contract))
    yield from _function_auth(d)


def _function_auth(d: Doctor) -> Iterator[Outcome]:
    """Whether the provisioning function's verify_jwt lets vyxops's bearer through: without it VERIFY_PROVISIONING
    and --probe cannot run (the one rule: vyxops.core.function_auth), which a person wants to know before an
    incident."""
    from vyxops.core.function_auth import HINT, bearer_said, verify_jwt_of, verify_jwt_refusal
    from vyxops.fetch.frames import fetch_functions

    s, c = d.session, d.pipeline
    assert s is not None and c is not None
    if not c.function or not s.supabase.management:  # self-hosted: no functions list to read verify_jwt from
        return
    try:
        verify_jwt = verify_jwt_of(fetch_functions(s), c.function)
    except (ApiError, TransportError) as exc:
        yield Outcome("contract", "function auth", "skipped", f"the functions list could not be read: {exc.message}")
        return
    bearer = s.supabase.function_bearer
    refused = verify_jwt_refusal(c.function, verify_jwt, bearer)
    if refused is not None:
        yield problem("contract", "function auth", f"{refused}: VERIFY_PROVISIONING and --probe cannot run", HINT)
        return
    on = {True: "verify_jwt on", False: "verify_jwt off", None: "verify_jwt not reported"}[verify_jwt]
    yield Outcome("contract", "function auth", "ok", f"{c.function}: {on}; vyxops sends {bearer_said(bearer)}")


def _contract_said(c: object) -> str:
    from vyxops.core.contract import Contract

    assert isinstance(c, Contract)
    return (
        f"{c.source}: function {c.function or '(none)'}, image secret {c.image_secret or '(none)'}, "
        f"table {c.table.name}"
    )
