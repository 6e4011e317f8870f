"""Solvers: the joint optimizer, FINN's baselines, exploration."""

#: what ``dse optimize --strategy`` runs: dse's joint solve, or a FINN baseline
#: (dse.solver.baselines)
STRATEGIES = ("joint", "setfolding", "two-stage", "elastic-df")

#: the frames of the one FINN PYNQ driver call a plan's ``metrics.batch`` reports unless told
#: (dse.solver.hostio.DriverCall): the batch finn-examples' bnn-pynq notebooks run
#: ``throughput_test()`` at (accel.batch_size 1000), also the default of FINN's cybersecurity
#: validate script (validate-unsw-nb15.py --batchsize)
DEFAULT_BATCH = 1000
