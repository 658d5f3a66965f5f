"""Alert rules and SLOs as data, and the life of an alert (docs/monitoring-alerts.md).

One concept per module:

- `figures.py` — the pool figures a threshold rule may name, and their values;
- `schema.py` — the rules file (YAML) as pydantic models: what it may say;
- `rules.py` — the rules in force (`RuleSet`), compiled from a file, or `invalid_alert_rules`
  with one line per problem, each naming the rule at fault;
- `reload.py` — `AlertRules`: the rules in force, taken again when the file changes;
- `slo.py` — SLO maths: windowed counts, SLI, error budget, burn rates (pure);
- `ports.py` — `AlertRecord` and the `AlertStore` port the engine keeps alerts through
  (`stores/alerts_sql.py` implements it);
- `engine.py` — `AlertEngine`: evaluation, and the alert life (fire, acknowledge, resolve);
- `docs.py` — the KPI and figure libraries as JSON-ready documents.

This module imports nothing, so that importing one of them (the SQL store imports `ports`)
does not load pydantic with the rest.
"""
