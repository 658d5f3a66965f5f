"""Treasury operations, pure: splits, waterfall, netting, bands, sweeps, rebalancing, credit
lines, FX quotes and stress scenarios, as numbers in and numbers out (no I/O, no clock).
The services that apply them to the pool are in `fundpool.desk`."""
