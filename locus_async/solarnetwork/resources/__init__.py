"""SolarUser's endpoints, one module per family; each group sends through a ``Requester``."""
