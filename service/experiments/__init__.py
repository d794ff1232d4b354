"""Online experiments: deterministic assignment, team-draft interleaving, event stores and reports."""
