"""Events: typed and versioned, written to the outbox with the change they report, relayed
to a bus (in-process, or NATS JetStream), applied once by each consumer."""
