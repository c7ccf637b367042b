# Two commands for a fresh machine: `make demo` and `make test`. Both build .venv on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# Exact torch pins: these builds install from this machine's local disk; others download gigabytes.
TORCH_PINS := torch==2.14.1 torchvision==0.29.1
STAMP := $(VENV)/.installed
# Exits 0 where every one of TORCH_PINS is installed (2.14.1+cu128 is pip's 2.14.1 too); no torch import.
HAS_TORCH_PINS := import sys; from importlib.metadata import version; \
	sys.exit(any(version(n).split('+')[0] != v for n, v in (p.split('==') for p in '$(TORCH_PINS)'.split())))
DEMO_DIR ?= runs/demo

.PHONY: setup demo test lint clean

setup: $(STAMP)

# .venv takes about 6.5 GiB (torch); a full disk would otherwise fail deep inside pip. A .venv that has the
# pinned torch already (pyproject.toml changed) fetches little more: it is not asked for 7 GiB.
# A python3 without ensurepip (Debian's without python3-venv) makes a .venv with no pip and fails: that
# half-made .venv is removed, else every later make took it as built and stopped at 'No module named pip'.
$(STAMP): pyproject.toml Makefile
	@test ! -x $(PY) || $(PY) -m pip --version >/dev/null 2>&1 || { echo "error: $(VENV) has no pip" \
		"(made by a python3 without ensurepip?): remove it (rm -rf $(VENV)) and run make again" >&2; exit 1; }
	@$(PY) -c "$(HAS_TORCH_PINS)" 2>/dev/null || \
		$(PYTHON) -c "import shutil, sys; free = shutil.disk_usage('.').free / 2**30; \
		sys.exit(None if free >= 7 else f'error: building $(VENV) takes about 7 GiB of disk; {free:.1f} GiB free here')"
	@if [ ! -x $(PY) ]; then \
		if [ -e $(VENV) ]; then echo "error: $(VENV) exists but has no $(PY): remove it and run make again" >&2; exit 1; fi; \
		echo "$(PYTHON) -m venv $(VENV)"; $(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); exit 1; }; \
	fi
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH_PINS)
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The demo is the user's path, command by command: draw the synthetic default
# category, convert it to YOLO + COCO (one split; YOLO polygon labels, so that
# rotated boxes stay tight), check both; cache SAM image embeddings,
# fine-tune MobileSAM's mask decoder for a few epochs and score it
# against zero-shot; fine-tune YOLO-World-v2's head on YOLO11n (open-vocabulary, started from
# COCO-pretrained YOLO11n, fetched offline-safe; the benchmark's winner) and score its boxes; then run the two as one cascade on the test split and write
# its report (report.html); last, PatchCore fit on the good images alone scores every test image.
# Full-length runs: see the pages of docs/ that README.md links.
SAM_EPOCHS ?= 6
DET_EPOCHS ?= 60
demo: setup
	$(PY) -m converters.synthetic --out $(DEMO_DIR)/mvtec --overwrite --no-progress
	$(PY) -m converters.mvtec2yolo --root $(DEMO_DIR)/mvtec --out $(DEMO_DIR)/synthetic_nut --coco --task segment --overwrite
	$(PY) -m converters.validate $(DEMO_DIR)/synthetic_nut
	$(PY) -m segmentation.embed --data $(DEMO_DIR)/synthetic_nut --model vit_t
	$(PY) -m segmentation.train --config configs/segmentation/sam_decoder.yaml data=$(DEMO_DIR)/synthetic_nut \
		out=$(DEMO_DIR)/sam name=vit_t exist_ok=true epochs=$(SAM_EPOCHS) progress=false
	$(PY) -m segmentation.evaluate --data $(DEMO_DIR)/synthetic_nut --checkpoint $(DEMO_DIR)/sam/vit_t/decoder.pt \
		--compare-zero-shot --no-progress
	$(PY) -m detection.train --config configs/detection/yolo11n_world.yaml data=$(DEMO_DIR)/synthetic_nut/data.yaml \
		epochs=$(DET_EPOCHS) imgsz=256 project=$(DEMO_DIR)/detect name=yolo11n_world exist_ok=true
	$(PY) -m detection.evaluate --data $(DEMO_DIR)/synthetic_nut/data.yaml --imgsz 256 --conf-from val \
		--weights $(DEMO_DIR)/detect/yolo11n_world/weights/best.pt --out $(DEMO_DIR)/detect/yolo11n_world/eval_test
	$(PY) -m inspection.evaluate --detector $(DEMO_DIR)/detect/yolo11n_world/weights/best.pt --imgsz 256 \
		--sam $(DEMO_DIR)/sam/vit_t/decoder.pt --data $(DEMO_DIR)/synthetic_nut --split test --conf-from val \
		--out $(DEMO_DIR)/inspect/test --overwrite --no-progress
	$(PY) -m anomaly.train --root $(DEMO_DIR)/mvtec --category synthetic_nut --out $(DEMO_DIR)/anomaly \
		--overwrite --no-progress
	$(PY) -m anomaly.evaluate --run $(DEMO_DIR)/anomaly --no-progress
	@echo
	@echo "== SAM on the test split: zero-shot vs fine-tuned decoder ($(SAM_EPOCHS) epochs) =="
	@cat $(DEMO_DIR)/sam/vit_t/eval_test/table.md
	@echo
	@echo "== YOLO-World-v2 head on YOLO11n: boxes on the test split ($(DET_EPOCHS) epochs at 256 px; started from COCO-pretrained YOLO11n, fixed class vectors: closed-set) =="
	@cat $(DEMO_DIR)/detect/yolo11n_world/eval_test/report.txt
	@echo
	@echo "== The cascade end to end on the test split (YOLO-World-v2 head boxes -> fine-tuned SAM masks) =="
	@sed -n '/^| figure/,/^$$/p' $(DEMO_DIR)/inspect/test/report.md
	@echo
	@echo "== PatchCore (MobileNetV2), fit on the good images only, every test image scored =="
	@sed -n '/^| figure/,/^$$/p' $(DEMO_DIR)/anomaly/eval-mvtec/report.md
	@echo
	@echo "Results in $(DEMO_DIR)/:"
	@echo "  mvtec/synthetic_nut/            the synthetic MVTec-layout category"
	@echo "  synthetic_nut/data.yaml         YOLO data set: stock 'yolo train' takes it (the converter's 'train with:' line above)"
	@echo "  synthetic_nut/annotations/      COCO instances_{train,val,test}.json"
	@echo "  synthetic_nut/splits.json       the shared train/val/test split"
	@echo "  sam/vit_t/                      decoder.pt, sam_finetuned.pth, results.csv, curves.png"
	@echo "  sam/vit_t/eval_test/            metrics.json, table.md, overlays/ (best and worst images)"
	@echo "  detect/yolo11n_world/           weights/best.pt, results.csv, plots; eval_test/evaluation.json"
	@echo "  inspect/test/                   the cascade (YOLO-World-v2 head boxes -> fine-tuned SAM masks) end to end:"
	@echo "                                  report.html, report.md, metrics.json, predictions.json, masks/"
	@echo "  anomaly/                        PatchCore run (memory bank); eval-mvtec/: report.md, anomaly_maps.png"
	@echo
	@echo "Inspection report (open it in a browser): $(abspath $(DEMO_DIR))/inspect/test/report.html"

# Two workers, whole test files to each (module fixtures are built once); tests/conftest.py gives each
# worker its share of the cores. `make test TEST_WORKERS=0` runs in one process.
TEST_WORKERS ?= 2
test: setup
	$(PY) -m ruff check .
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile

lint: setup
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

clean:
	rm -rf $(VENV) runs .pytest_cache .hypothesis
