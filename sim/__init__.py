"""feedsim: a discrete-event simulator of a short-video platform.

Compares a content-graph ranker (For You: interest retrieval plus staged
traffic pools) with a follower-graph ranker, on a SimPy clock.
"""

__version__ = "0.1.0"
