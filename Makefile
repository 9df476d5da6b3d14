# The README's two set-up commands: `make demo` and `make test`.
# Each creates or updates .venv from pyproject.toml, then runs.
PYTHON ?= python3
# Quiet set-up and runs: no pip notices, no TensorFlow C++ banner.
export PIP_DISABLE_PIP_VERSION_CHECK := 1
export PIP_NO_WARN_SCRIPT_LOCATION := 1
export PIP_ROOT_USER_ACTION := ignore
export TF_CPP_MIN_LOG_LEVEL := 3
EXAMPLES := gradient_descent momentum learning_rates adaptive lr_range_test \
  feature_scaling batch_norm early_stopping l1_l2 dropout_ensemble \
  search_strategies repair
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test test-all bench examples lint clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -qq --upgrade pip
	$(PY) -m pip install -qq -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) examples/demo.py

# The suite CI runs, ~9 minutes on 2 cores: every backend leg, the demo,
# every example; the three tests marked `slow` wait for `make test-all`.
test: $(STAMP)
	$(PY) -m pytest -n 2 -q -m 'not slow'

test-all: $(STAMP)
	$(PY) -m pytest -n 2 -q

bench: $(STAMP)
	$(PY) benchmarks/optimizer_step.py
	$(PY) benchmarks/probe_cost.py

examples: $(STAMP)
	@for e in $(EXAMPLES); do echo "== examples/$$e.py"; \
	  $(PY) examples/$$e.py --out examples_output || exit 1; done

clean:
	rm -rf $(VENV) build *.egg-info
