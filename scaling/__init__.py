"""scaling: a JAX scaling-law lab.

Rooms (imports only go left-to-right): config <- model/parallel/data <- train/rl <- sweep <- cli.
`laws` and `plots` read registries or CSVs and never import model, train or rl.
"""

__version__ = "0.1.0"
