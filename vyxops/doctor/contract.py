"""Contract: the pipeline contract resolves for ``--app`` (declared or discovered); an ambiguity names the key."""

from __future__ import annotations

from collections.abc import Iterator

from vyxops.doctor.model import Doctor, Outcome, problem
from vyxops.errors import ApiError, TransportError


def check_contract(d: Doctor) -> Iterator[Outcome]:
    from vyxops.contract import AmbiguousContract, declared_contract
    from vyxops.discover import resolve_contract

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
    yield Outcome("contract", "pipeline", "ok", _contract_said(contract))


def _contract_said(c: object) -> str:
    from vyxops.contract import Contract

    assert isinstance(c, Contract)
    return (
        f"{c.source}: function {c.function or '(none)'}, image secret {c.image_secret or '(none)'}, "
        f"table {c.table.name}"
    )
