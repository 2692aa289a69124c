"""canirun: which AI models and serving frameworks can this machine host, and how?

The package is imported by every command, so it stays empty of work: each layer
(hardware probe, catalog, estimator, report, output) is imported only by the
commands that need it.
"""

__version__ = "0.1.0"
