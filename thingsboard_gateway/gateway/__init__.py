"""The gateway service: life cycle, supervision, statistics, device registry, routing."""
