"""Asset checks and alerts: data quality, KPIs and freshness of every table, and who is told when they fail."""
