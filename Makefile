# spine-litt developer targets. `make help` lists them.
# The environment (.venv) is created/updated by scripts/setup_env.sh, which every target
# that needs it runs first (it returns at once when .venv is up to date).

VENV    ?= .venv
PY       = $(VENV)/bin/python
# the venv's mpiexec (PyPI mpich wheel); `mpiexec` from PATH when the venv has none
# (e.g. SPINE_LITT_PIP_EXTRAS=dev with DOLFINx from conda). Expanded when a recipe runs,
# i.e. after `env` has created the venv.
MPIEXEC  = $(if $(wildcard $(VENV)/bin/mpiexec),$(VENV)/bin/mpiexec,mpiexec)
NP      ?= 2
CASE    ?= cases/spine/T8_lytic_intact.toml
OUT     ?= results/T8_intact
# extra pytest arguments, e.g. make test-serial PYTEST_ARGS="-k mesh -x"
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help env slurm-deps test test-serial test-mpi run bench clean distclean

help:
	@echo "spine-litt targets:"
	@echo "  make env          create/update $(VENV) (scripts/setup_env.sh; fast when up to date)"
	@echo "  make test         serial test suite, then the mpi-marked tests under mpiexec -n $(NP)"
	@echo "  make slurm-deps   install slurm-wlm + munge for the SLURM test (root only, when missing)"
	@echo "  make test-serial  serial test suite only"
	@echo "  make test-mpi     mpi-marked tests only, under mpiexec -n $(NP)"
	@echo "  make run          run a case: bioheat run $(CASE) --out $(OUT) --overwrite"
	@echo "  make bench        benchmark suite scripts/bench.py -> results/bench/bench.json (BENCH=quick: about a minute)"
	@echo "  make clean        remove results/ and caches (keeps $(VENV))"
	@echo "  make distclean    clean, and remove $(VENV)"
	@echo "variables: VENV=$(VENV) NP=$(NP) CASE=... OUT=... PYTEST_ARGS=... BENCH=full|quick"

env:
	SPINE_LITT_VENV="$(VENV)" bash scripts/setup_env.sh

SERIAL_PYTEST = $(PY) -m pytest -q --timeout=600 $(PYTEST_ARGS) tests
MPI_PYTEST    = timeout --foreground -k 60 1500 $(MPIEXEC) -n $(NP) $(PY) -m pytest -q -m mpi \
                --timeout=600 --timeout-method=thread -p no:cacheprovider $(PYTEST_ARGS) tests
# MPI half. pytest exit code 5 ("no tests collected") counts as success here only.
# mpiexec ORs the ranks' exit codes (1|4 == 5), so a 5 is confirmed by a serial collect-only run.
define MPI_STEP
@echo '$(subst ',,$(MPI_PYTEST))'; set +e; \
$(MPI_PYTEST); rc=$$?; \
if [ $$rc -eq 5 ]; then \
  $(PY) -m pytest -q -m mpi --collect-only -p no:cacheprovider $(PYTEST_ARGS) tests >/dev/null 2>&1; \
  if [ $$? -eq 5 ]; then echo "make: no mpi-marked tests collected: OK"; rc=0; fi; \
elif [ $$rc -eq 124 ] || [ $$rc -eq 137 ]; then echo "make: MPI tests timed out after 1500 s" >&2; fi; \
exit $$rc
endef

# the SLURM sweep test needs slurm-wlm and munge: installed here when root and missing
# (scripts/slurm_local.sh ensure); otherwise that test is skipped with the reason
slurm-deps:
	bash scripts/slurm_local.sh ensure

test: env slurm-deps
	$(SERIAL_PYTEST)
	$(MPI_STEP)

test-serial: env
	$(SERIAL_PYTEST)

test-mpi: env
	$(MPI_STEP)

run: env
	$(VENV)/bin/bioheat run $(CASE) --out $(OUT) --overwrite

# BENCH=quick: T8 standard mesh, 10 steps, small box; BENCH=full (default): the whole suite
BENCH   ?= full
bench: env
	$(PY) scripts/bench.py $(if $(filter quick,$(BENCH)),--quick,)

clean:
	rm -rf results/ .pytest_cache/ .cache/ .hypothesis/
	find . -path './$(VENV:./%=%)' -prune -o -path ./.git -prune -o -type d -name __pycache__ -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
