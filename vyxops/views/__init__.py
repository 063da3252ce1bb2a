"""What a person reads: plots, reports, the postmortem, the explorer and the audit log view."""
