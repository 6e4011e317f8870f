"""Solvers: the joint optimizer, FINN's baselines, exploration."""

#: what ``dse optimize --strategy`` runs: dse's joint solve, or a FINN baseline
#: (dse.solver.baselines)
STRATEGIES = ("joint", "setfolding", "two-stage", "elastic-df")
