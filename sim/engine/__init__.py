"""The simulation engine: SimPy wiring (:mod:`sim.engine.simulation`) over the model's mechanisms."""

from sim.engine.simulation import RunStopped, Simulation

__all__ = ["RunStopped", "Simulation"]
