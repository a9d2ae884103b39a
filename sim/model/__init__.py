"""The model as data and pure functions: random streams, the world, the follow graph, the platform
state rankers read, and behaviour."""
