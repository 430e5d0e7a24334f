"""Parameter sweeps: ``bioheat sweep plan | run | status | collect | analyze``.

A sweep file (TOML, see :mod:`solver.sweep.spec`) names a base case and the keys to vary by
their ``--set`` paths; ``plan`` writes one resolved, validated case per run under a folder with
a manifest; ``run`` executes them (local processes, a SLURM job array, or one MPI job split
into groups); ``collect`` gathers one table; ``analyze`` computes sensitivity indices, the
probability of an unsafe verdict and plots.
"""
