"""Lesson 8's ONNX export, two routes, measured on this machine: peak memory, seconds, agreement.

Not a test. It needs a saved classifier (lesson 6's ``finetuned/model`` folder), e.g.

    .venv/bin/python benchmarks/onnx_export.py --model reports/full/artifacts/finetuned/model

Each route runs in its own process, so each peak (Linux ``VmHWM``, the classifier loaded
included) is its own:
  tf2onnx    ``tf2onnx.convert.from_function`` with its defaults (TensorFlow's graph optimiser,
             then tf2onnx's ONNX optimiser passes): how lesson 8 exported until 2026-11-26
  lean       ``serving.export_onnx``: weights kept out of the graph while converting, no
             tf2onnx passes (ONNX Runtime optimises the graph when it loads it)
Both files are then scored by ONNX Runtime on the same random token ids and compared with
TensorFlow, and timed at batch 1 and 32 (fp32). The record goes to benchmarks/results/.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmark_records import save_record

ROUTES = ("tf2onnx", "lean")


def export(route: str, model_folder: str, target: str) -> dict:
    """One export in this process: seconds and the process's peak memory."""
    import toxhelpers  # noqa: F401
    from toxhelpers import model, serving
    from toxhelpers.run.peak_memory import high_water_mb

    classifier, _, _ = model.load_classifier(model_folder)
    loaded_mb = high_water_mb(os.getpid())
    started = time.perf_counter()
    if route == "lean":
        serving.export_onnx(classifier, target)
    else:
        import tf2onnx

        function = serving.serving_function(classifier)
        tf2onnx.convert.from_function(function, input_signature=function.input_signature,
                                      opset=serving.DEFAULT_OPSET, output_path=target,
                                      custom_op_handlers={"Erfc": (serving._erfc_as_one_minus_erf, [])})
    return {"route": route, "seconds": time.perf_counter() - started, "loaded_mb": loaded_mb,
            "peak_mb": high_water_mb(os.getpid()), "size_mb": serving.file_size_mb(target)}


def compare(model_folder: str, files: dict[str, str]) -> dict:
    """Largest probability difference from TensorFlow, and latency, of each exported file."""
    import numpy as np

    import toxhelpers  # noqa: F401
    from toxhelpers import batches, model, serving

    classifier, _, _ = model.load_classifier(model_folder)
    rng = np.random.default_rng(0)
    ids = rng.integers(1000, 20000, size=(64, 128)).astype(np.int32)
    mask = (np.arange(128)[None, :] < rng.integers(8, 129, size=64)[:, None]).astype(np.int32)
    encoded = {"input_ids": ids * mask, "attention_mask": mask}
    reference = batches.predict(classifier, encoded)[:, 0]
    sessions = {route: serving.OnnxClassifier(path) for route, path in files.items()}
    inputs = serving.benchmark_inputs({"input_ids": ids, "attention_mask": np.ones_like(ids)}, [1, 32], 128)
    table = serving.latency_table(sessions, inputs, repeats=20)
    return {route: {"max_abs_difference_vs_tf": float(np.abs(batches.predict_with(session, encoded) - reference).max()),
                    **{f"batch{batch}_median_ms": float(table.loc[(batch, route), "median_ms"]) for batch in (1, 32)}}
            for route, session in sessions.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="a folder saved by model.save_classifier")
    parser.add_argument("--child", choices=ROUTES, help=argparse.SUPPRESS)
    parser.add_argument("--target", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print("RESULT " + json.dumps(export(args.child, args.model, args.target)))
        return
    record = {"started": dt.datetime.now().isoformat(timespec="seconds"), "model": args.model,
              "machine": f"{os.cpu_count()} CPUs, {platform.platform()}", "routes": {}}
    with tempfile.TemporaryDirectory() as folder:
        files = {route: str(Path(folder) / f"{route}.onnx") for route in ROUTES}
        for route in ROUTES:
            done = subprocess.run([sys.executable, __file__, "--model", args.model, "--child", route,
                                   "--target", files[route]], capture_output=True, text=True)
            found = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
            if done.returncode or not found:
                raise SystemExit(f"route {route} failed:\n{done.stderr[-3000:]}")
            record["routes"][route] = json.loads(found[-1][len("RESULT "):])
            print(record["routes"][route], flush=True)
        for route, values in compare(args.model, files).items():
            record["routes"][route].update(values)
    lines = [f"# ONNX export routes, {record['started']}", "", f"{record['machine']}; model {args.model}", "",
             "| route | export s | peak MB (classifier loaded: MB) | file MB | max diff vs TF | batch 1 ms | batch 32 ms |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for route, values in record["routes"].items():
        lines.append(f"| {route} | {values['seconds']:.1f} | {values['peak_mb']:.0f} ({values['loaded_mb']:.0f}) | "
                     f"{values['size_mb']:.1f} | {values['max_abs_difference_vs_tf']:.1e} | "
                     f"{values['batch1_median_ms']:.1f} | {values['batch32_median_ms']:.1f} |")
    save_record("onnx_export", record, lines)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
