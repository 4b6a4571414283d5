from scaling.parallel.mesh import (
    LOGICAL_RULES,
    constrain,
    logical_to_spec,
    make_mesh,
    maybe_initialize_distributed,
    state_shardings,
)

__all__ = ["LOGICAL_RULES", "constrain", "logical_to_spec", "make_mesh", "maybe_initialize_distributed", "state_shardings"]
