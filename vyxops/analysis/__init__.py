"""From frames to a verdict: evidence, discovery, the timeline, detectors, advice and the audit."""
