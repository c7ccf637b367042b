"""detection.evaluate's image-level detections against detection.predict's, on real trained detectors.

For every ``best.pt`` under a ``bench/detect_bench.py --work`` folder: the test split evaluated
(``RecordingValidator.calls``, the image-level figures' input) and predicted at ``--conf 0.001``;
the top box score per photo of each, and of the validator's own boxes beside them.

    OMP_NUM_THREADS=1 PYTHONPATH=. .venv/bin/python \\
        bench/experiments/detect_image_level_calls/check_calls.py WORK [--scratch /tmp/cc]
"""

import argparse
from pathlib import Path

import yaml

from detection.evaluate import evaluate
from detection.predict import predict
from detection.validator import RecordingValidator


class Seen(RecordingValidator):
    """Keeps each validator it runs, to read its ``calls`` and ``detections`` afterwards."""

    runs: list[RecordingValidator] = []

    def init_metrics(self, model) -> None:
        super().init_metrics(model)
        Seen.runs.append(self)


def top(scores) -> float:
    return float(max(scores)) if len(scores) else 0.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("work", type=Path)
    parser.add_argument("--scratch", type=Path, default=Path("/tmp/check_calls"))
    args = parser.parse_args()
    worst = 0.0
    for best in sorted(args.work.rglob("weights/best.pt")):
        run = best.parents[1]
        data = Path(yaml.safe_load((run / "args.yaml").read_text())["data"])
        out = args.scratch / run.name
        options = {"imgsz": 256, "device": "cpu", "out": out, "plots": False}
        evaluate(data, best, split="test", validator_class=Seen, **options)
        folder = Path(yaml.safe_load(data.read_text())["path"]) / "images" / "test"
        found = predict(best, folder, imgsz=256, conf=0.001, device="cpu")
        validator = Seen.runs[-1]
        for name, entry in found.items():
            calls, predicted = top(validator.calls[name].scores), top(entry["scores"])
            worst = max(worst, abs(calls - predicted))
            print(
                f"{run.parent.name}/{run.name} {name}: calls {calls:.4f} predict {predicted:.4f} "
                f"validator {top(validator.detections[name].scores):.4f}"
            )
    print("largest |calls - predict| top score:", worst)


if __name__ == "__main__":
    main()
