# Two commands for a fresh machine: `make demo` and `make test`. Both build .venv on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# Exact torch pins: these builds install from this machine's local disk; others download gigabytes.
TORCH_PINS := torch==2.14.1 torchvision==0.29.1
STAMP := $(VENV)/.installed
DEMO_DIR ?= runs/demo

.PHONY: setup demo test lint clean

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH_PINS)
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The demo is the user's path, command by command: draw the synthetic default
# category, convert it to YOLO + COCO (one split), check both with ultralytics
# and pycocotools.
demo: setup
	$(PY) -m converters.synthetic --out $(DEMO_DIR)/mvtec --overwrite --no-progress
	$(PY) -m converters.mvtec2yolo --root $(DEMO_DIR)/mvtec --out $(DEMO_DIR)/synthetic_nut --coco --overwrite
	$(PY) -m converters.validate $(DEMO_DIR)/synthetic_nut
	@echo
	@echo "Results in $(DEMO_DIR)/:"
	@echo "  mvtec/synthetic_nut/            the synthetic MVTec-layout category"
	@echo "  synthetic_nut/data.yaml         YOLO data set:  yolo train data=$(CURDIR)/$(DEMO_DIR)/synthetic_nut/data.yaml"
	@echo "  synthetic_nut/annotations/      COCO instances_{train,val,test}.json"
	@echo "  synthetic_nut/splits.json       the shared train/val/test split"

test: setup
	$(PY) -m ruff check .
	$(PY) -m pytest

lint: setup
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

clean:
	rm -rf $(VENV) runs .pytest_cache .hypothesis
