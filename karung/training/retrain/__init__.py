"""``karung retrain``: from moderators' labels to a gated challenger of the served model."""
