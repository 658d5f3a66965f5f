"""The treasury desk: the services that apply fundpool.treasury to the pool."""
