"""The bus's defaults, apart from the bus: the CLI shows them as its options' defaults, and
reading them must not load the NATS client (a command, or a server worker, that never touches
the bus starts without it)."""

DEFAULT_NATS_URL = "nats://127.0.0.1:4222"
DEFAULT_PREFIX = "fundpool"  # the subjects' first token; the streams' name prefix in capitals
DURABLE_PREFIX = "projector"
RELAY_CURSOR = "nats"
ACK_WAIT_S = 5.0
PULL_BATCH = 1_000
