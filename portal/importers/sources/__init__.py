"""One module per vendor: fetch (REST API with a read-only token) and map (vendor shape -> plan.Plan)."""
