"""Pack side-by-side images into the DGF tutorial's HDF5 file.

    python datasets/build_hdf5.py --input data/small --output data/data.h5 [--size 256] [--order target_left]

--input holds train/ and test/ folders of side-by-side images (the DGF data: sharp LEFT, blurred
right, hence the default --order target_left). The file gets {train,test}_data_full (sharp) and
{train,test}_data_blur, uint8 (N, size, size, 3), written one image at a time.
"""

from __future__ import annotations

import argparse

from common.cli import run_cli


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python datasets/build_hdf5.py",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", required=True, help="folder with train/ and test/ side-by-side images")
    parser.add_argument("--output", required=True, help="the .h5 file to write")
    parser.add_argument("--size", type=int, default=256,
                        help="each half is resized to size x size (DGF tutorial: 256)")
    parser.add_argument("--order", choices=("target_left", "degraded_left"), default="target_left",
                        help="which half is sharp: target_left = sharp left (DGF data)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --output")
    args = parser.parse_args(argv)

    from common.datasets_tools import build_hdf5

    counts = build_hdf5(args.input, args.output, size=args.size, order=args.order,
                        overwrite=args.overwrite, log=print)
    for split, count in counts.items():
        print(f"{split}: {count} pairs -> {args.output} ({split}_data_full, {split}_data_blur)")
    return 0


if __name__ == "__main__":
    run_cli(main)
