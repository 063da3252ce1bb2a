"""The causal ranking: the root cause is the most upstream link that explains what happened.

SPEC.md's principles, in the order this module applies them:

1. Symptoms are what happened to provisioning (refusals, failed machines, rows);
   a symptom whose cause is no longer in effect is history: ``info``, "resolved at …".
2. A cause explains a symptom only if it came first (the registry's ``explains``
   predicates say which; e.g. a tag deleted after a launch did not cause it).
3. The root is the most upstream finding among the causes that explain a current
   symptom and the current symptoms nothing explains. A DB discrepancy is never
   the root when a machine failure (current or past) explains it.
4. With no current symptom, a cause that makes every provisioning fail while it
   holds (``certain``: the image provisioning uses does not exist) is the root.
5. Healthy lifecycles never reach here (the ledger sets them apart); with no root,
   no finding is critical.
"""

from __future__ import annotations

from vyxops.analysis.detect.model import Finding, detector_for, is_db_discrepancy
from vyxops.core.present import fmt_time


def _explains(cause: Finding, symptom: Finding) -> bool:
    if cause is symptom:
        return False
    predicate = detector_for(cause.code).explains
    return bool(predicate and predicate(cause, symptom))


def _explainers(findings: list[Finding], symptoms: list[Finding]) -> dict[tuple[str, str], list[Finding]]:
    """symptom key -> the findings that explain it, without trying every pair on a busy day: a state
    (secret, image) may explain any symptom, a symptom only the symptoms of its own machine."""
    states = [f for f in findings if not f.symptom and detector_for(f.code).explains]
    by_machine: dict[object, list[Finding]] = {}
    for f in findings:
        if f.symptom and detector_for(f.code).explains:
            by_machine.setdefault(f.facts.get("machine_id"), []).append(f)
    out = {}
    for s in symptoms:
        near = by_machine.get(s.facts.get("machine_id"), []) if s.facts.get("machine_id") else []
        out[s.key] = [c for c in states + near if _explains(c, s)]
    return out


def rank(findings: list[Finding], tz: str = "UTC") -> tuple[Finding | None, list[Finding]]:
    """Name the finding that explains the others and set every finding's severity by its role (times in ``tz``)."""
    symptoms = [f for f in findings if f.symptom]
    for s in symptoms:
        if not s.current:
            _mark_history(s, tz)
    live = [s for s in symptoms if s.current]
    explained = _explainers(findings, symptoms)
    causing = {id(c) for s in live for c in explained[s.key]}
    candidates = [c for c in findings if id(c) in causing and c.current]
    for s in live:
        if explained[s.key]:
            continue  # its cause speaks for it
        candidates.append(s)
    candidates, rivals = _one_refusal_cause(candidates)
    root = _most_upstream(candidates)
    if root is None:
        certain = [f for f in findings if not f.symptom and detector_for(f.code).certain]
        root = _most_upstream(certain)
    _set_severities(findings, root, explained)
    if root is not None and (rivals or isinstance(root.facts.get("attempts"), int)):
        _keep_rivals(findings, root, rivals)
    return root, findings


def _one_refusal_cause(candidates: list[Finding]) -> tuple[list[Finding], list[Finding]]:
    """Of causes that each explain refused creates still in effect (``facts["attempts"]``: a token refused, a
    rate limit, no capacity), the one that explains more of the window's failing attempts stays a candidate;
    the others are its rivals, in effect too (SPEC.md: both critical, the summary names the other)."""
    counted = [c for c in candidates if not c.symptom and isinstance(c.facts.get("attempts"), int)]
    if len(counted) < 2:
        return candidates, []
    best = max(counted, key=lambda c: (c.facts["attempts"], -int(c.link)))
    rivals = [c for c in counted if c is not best]
    return [c for c in candidates if all(c is not r for r in rivals)], rivals


def _keep_rivals(findings: list[Finding], root: Finding, rivals: list[Finding]) -> None:
    """Causes in effect beside the root stay critical, and the root's facts name them for its summary; so does a
    cause that makes every provisioning fail (``certain``) while a refusal class is the root."""
    also = list(rivals)
    if isinstance(root.facts.get("attempts"), int):
        also += [f for f in findings if f is not root and not f.symptom and f.current and detector_for(f.code).certain]
    for f in also:
        f.severity = "critical"
    root.facts["also"] = also


def _most_upstream(found: list[Finding]) -> Finding | None:
    """The finding at the most upstream link; among equals, the one that happened last."""
    if not found:
        return None
    latest = max((f.at for f in found if f.at is not None), default=None)

    def order(f: Finding) -> tuple[int, int, str, str]:
        recent = 0 if latest is not None and f.at is not None and f.at == latest else 1
        return (int(f.link), recent, f.code, f.entity)

    return min(found, key=order)


def _mark_history(f: Finding, tz: str) -> None:
    when = (
        f" (resolved at {fmt_time(f.resolved_at, tz)})"
        if f.resolved_at is not None
        else " (its cause is no longer in effect)"
    )
    if "resolved" not in f.title:
        f.title += when


def _set_severities(
    findings: list[Finding], root: Finding | None, explained: dict[tuple[str, str], list[Finding]]
) -> None:
    for f in findings:
        if f is root:
            f.severity = "critical"
        elif f.symptom and not f.current:
            f.severity = "info"
        elif f.symptom and is_db_discrepancy(f.code) and any(not c.current for c in explained[f.key]):
            f.severity = "warning"  # a leftover of a failure that is history: reconcile it
        elif f.symptom:
            f.severity = "critical" if root is not None else "warning"
        elif f.severity == "critical":
            f.severity = "warning"  # a cause that explains nothing that happened
