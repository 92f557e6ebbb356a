# Two commands on a fresh clone:
#   make demo   set up .venv, train T1 -> CT on the bundled phantoms, translate a held-out scan, print the eval table
#   make test   set up .venv and run the test suite (skip reasons listed; under CI a skip for a missing extra fails)
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIX := $(VENV)/bin/pix2gan
DEMO_RUN ?= runs/demo
# optional extras installed with the package; under CI (CI=true) their tests must run: tests/extras_gate.py fails a
# test that skips for one of them (PIX2GAN_REQUIRE_EXTRAS set in the environment wins)
EXTRAS := onnx,tensorboard
REQUIRE_EXTRAS := $(or $(PIX2GAN_REQUIRE_EXTRAS),$(if $(filter true 1,$(CI)),$(EXTRAS)))

.PHONY: setup demo test bench clean

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	@# CPU machines: install the local CPU build of torch first, so nothing pulls GBs of CUDA wheels
	@$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q "torch==2.13.0"
	$(PY) -m pip install -q -e ".[test,$(EXTRAS)]"
	@touch $@

setup: $(VENV)/.installed

demo: setup
	@rm -rf $(DEMO_RUN)
	$(PIX) train --src t1 --dst ct --run-dir $(DEMO_RUN)
	@test_subject=$$($(PY) -c "import json; print(json.load(open('$(DEMO_RUN)/split.json'))['test'][0])"); \
	  $(PIX) translate samples/$$test_subject/t1.nii.gz --run $(DEMO_RUN) -o $(DEMO_RUN)/translated/$${test_subject}_ct.nii.gz
	$(PIX) eval --run $(DEMO_RUN) --metrics mae psnr ssim realism --json $(DEMO_RUN)/eval.json

test: setup
	PIX2GAN_REQUIRE_EXTRAS=$(REQUIRE_EXTRAS) $(PY) -m pytest -q -rs

bench: setup
	$(PY) bench/throughput.py
	$(PY) bench/train.py
	$(PY) bench/translate.py

clean:
	rm -rf $(VENV) runs .pytest_cache
