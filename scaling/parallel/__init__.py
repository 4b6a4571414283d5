from scaling.parallel.mesh import (
    LOGICAL_RULES,
    constrain,
    logical_to_spec,
    make_mesh,
    state_shardings,
)
from scaling.parallel.distributed import barrier, is_primary, maybe_initialize_distributed, on_primary

__all__ = ["LOGICAL_RULES", "barrier", "constrain", "is_primary", "logical_to_spec", "make_mesh",
           "maybe_initialize_distributed", "on_primary", "state_shardings"]
