"""Graph passes: the pass manager, its instruments, the rewriter, and the graph-level passes.

>>> import ember.passes as passes
>>> optimized = passes.run_passes(graph, opt_level=2)                              # doctest: +SKIP
>>> optimized = passes.run_passes(graph, [passes.FoldConstants(), passes.DeadCode()])  # doctest: +SKIP
>>> ctx = passes.PassContext(opt_level=3, disabled={"cse"}, verify=True)          # doctest: +SKIP
>>> optimized = ctx.run(graph); ctx.stats                                         # doctest: +SKIP
[{'name': 'fold_constants', 'seconds': 0.0012, 'nodes_before': 175, 'nodes_after': 175, 'rewrites': 0}, ...]

See ``docs/passes.md`` for writing a pass.
"""

from .instruments import DumpIR, Instrument, PrintPasses, Verify
from .pass_manager import (PIPELINE, Pass, PassContext, debug_level, get_pass, pipeline, register_pass,
                           registered_passes, run_passes)
from .rewriter import Rewriter

# The passes register themselves on import.
from .cse import CSE
from .dead_code import DeadCode
from .fold_batch_norm import FoldBatchNorm
from .fold_constants import FoldConstants
from .fuse_ops import FuseOps
from .layout import BlockedLayout
from .pack_weights import PackWeights
from .simplify import Simplify
from .winograd import Winograd

__all__ = [
    "DumpIR", "Instrument", "PrintPasses", "Verify", "PIPELINE", "Pass", "PassContext", "debug_level",
    "get_pass", "pipeline", "register_pass", "registered_passes", "run_passes", "Rewriter",
    "BlockedLayout", "CSE", "DeadCode", "FoldBatchNorm", "FoldConstants", "FuseOps", "PackWeights", "Simplify", "Winograd",
]
