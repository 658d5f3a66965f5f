"""The NATS JetStream bus: an adapter that relays the outbox to JetStream and applies the
streams to projections (docs/monitoring.md, ADR 0011). It imports the stores and the ports the
services declare (`fundpool.monitoring.ports`); no service imports it."""
