"""Peak memory and time of whole-image vs tiled inference (``--tile``) for a family's generator.

    python benchmarks/tiled_inference_memory.py --family dgf_deblur --size 768x1024 --tiles 0,256
    python benchmarks/tiled_inference_memory.py --family deblur_gan --size 3024x4032 --tiles 512

Each measurement runs in a fresh process with randomly initialised weights (memory and time do not
depend on the weights), BatchNormalization folded as in predict.py, and reports the process's peak
resident memory. ``--tiles 0`` is the whole
image at once. Extra ``--set field=value`` overrides go to the family's config (e.g. a narrower net).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

CHILD = r"""
import json, resource, sys, time
import numpy as np
family, height, width, tile, overrides = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), json.loads(sys.argv[5])
import importlib
model = importlib.import_module(f"{family}.model")
from common.folding import fold_batch_norm
from common.inference import restore_array
build = getattr(model, "build_generator", None) or getattr(model, "build_completion_network")
generator = fold_batch_norm(build(**overrides))  # what predict.py runs
scale = int(generator(np.zeros((1, 8, 8, 3), "float32")).shape[1]) // 8  # SRGAN: 4
image = np.random.default_rng(0).uniform(-1, 1, (height, width, 3)).astype("float32")
start = time.perf_counter()
out = restore_array(generator, image, multiple=4, scale=scale, tile=tile)  # 0: the whole image
elapsed = time.perf_counter() - start
peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": round(elapsed, 1), "peak_mb": round(peak_mb), "shape": list(out.shape)}))
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--family", default="dgf_deblur", choices=("deblur_gan", "dgf_deblur", "srgan"))
    parser.add_argument("--size", default="768x1024", help="HEIGHTxWIDTH")
    parser.add_argument("--tiles", default="0,256", help="comma-separated tile sizes; 0 = whole image")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                        help="config override, JSON value (e.g. growth_rate=16)")
    args = parser.parse_args()
    height, width = (int(v) for v in args.size.lower().split("x"))
    overrides = {k: json.loads(v) for k, v in (item.split("=", 1) for item in args.set)}
    print(f"{args.family} on {height}x{width} {overrides or ''}")
    print(f"{'tile':>8}{'seconds':>10}{'peak MB':>10}")
    for tile in (int(t) for t in args.tiles.split(",")):
        done = subprocess.run([sys.executable, "-c", CHILD, args.family, str(height), str(width), str(tile),
                               json.dumps(overrides)], capture_output=True, text=True)
        if done.returncode != 0:
            reason = "killed (out of memory?)" if done.returncode < 0 else done.stderr.strip().splitlines()[-1]
            print(f"{tile or 'whole':>8}  failed: {reason}")
            continue
        result = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"{tile or 'whole':>8}{result['seconds']:>10}{result['peak_mb']:>10}")


if __name__ == "__main__":
    main()
