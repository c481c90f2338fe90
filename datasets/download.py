"""Fetch (or organise by hand-downloaded archives) the public data sets the families train on.

    python datasets/download.py div2k  --output data/div2k     # SRGAN: DIV2K HR, downloaded
    python datasets/download.py gopro  --output data/gopro  --archive GOPRO_Large.zip   # DeblurGAN
    python datasets/download.py celeba --output data/celeba --archive img_align_celeba.zip  # GLCIC

DIV2K comes from its stable public URL (keras.utils.get_file) into DIR/train (800 images) and
DIR/test (the 100 validation images). GoPro and CelebA are hosted on Google Drive / institution
pages without a stable direct URL: without --archive this prints the official page and the manual
steps; with --archive it extracts and organises the archive (GoPro -> DIR/{train,test}/{A,B},
CelebA -> DIR/{train,val,test} by the official partition).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from common.cli import run_cli
from common.errors import UserError


def _manual_steps(name: str, page: str, archive: str, output: str) -> None:
    print(f"{name} has no stable direct download link. To get it:")
    print(f"  1. open {page} and download {archive} (accept the licence terms there)")
    print(f"  2. run: python datasets/download.py {name.lower()} --output {output} --archive PATH/TO/{archive}")


def _div2k(args, tools) -> None:
    output = Path(args.output).expanduser()
    from common.image_io import list_images

    done = [s for s in tools.DIV2K_FILES if (output / s).is_dir() and list_images(output / s)]
    if len(done) == len(tools.DIV2K_FILES) and not args.archive:
        print(f"DIV2K is already in {output} (train/, test/); nothing to do")
        return
    downloaded = []
    archives = [Path(a).expanduser() for a in args.archive or []]
    if not archives:
        for split, name in tools.DIV2K_FILES.items():
            if split in done:
                continue
            url = args.base_url.rstrip("/") + "/" + name
            print(f"downloading {url}")
            archives.append(tools.download_file(url, output / "downloads", tools.DIV2K_PAGE))
            downloaded.append(archives[-1])
    counts = tools.extract_and_organize(archives, output, lambda extracted: tools.organize_div2k(extracted, output))
    for archive in downloaded:  # our own downloads only; never the user's --archive files
        archive.unlink(missing_ok=True)
    for split, count in counts.items():
        print(f"{split}: {count} HR images -> {output / split}")


def _gopro(args, tools) -> None:
    if not args.archive:
        _manual_steps("GoPro", tools.GOPRO_PAGE, "GOPRO_Large.zip", args.output)
        raise UserError(f"GoPro needs --archive; download GOPRO_Large.zip from {tools.GOPRO_PAGE} "
                        "first (steps above)")
    output = Path(args.output).expanduser()

    def organize(extracted):
        root = next((p for p in sorted(extracted.rglob("train"), key=lambda p: len(p.parts))
                     if p.is_dir()), None)
        if root is None:
            raise UserError(f"{args.archive[0]}: no GOPRO_Large/train folder in the archive; use "
                            f"GOPRO_Large.zip from {tools.GOPRO_PAGE}")
        return tools.organize_gopro(root.parent, output, gamma=args.gamma, mode="move",
                                    overwrite=args.overwrite)

    counts = tools.extract_and_organize(args.archive, output, organize)
    for split, count in counts.items():
        print(f"{split}: {count} pairs -> {output / split}/A (blurred), {output / split}/B (sharp)")


def _celeba(args, tools) -> None:
    if not args.archive:
        _manual_steps("CelebA", tools.CELEBA_PAGE, "img_align_celeba.zip", args.output)
        raise UserError(f"CelebA needs --archive; download img_align_celeba.zip (Align&Cropped "
                        f"Images) from {tools.CELEBA_PAGE} first (steps above)")
    output = Path(args.output).expanduser()
    counts = tools.extract_and_organize(args.archive, output,
                                        lambda extracted: tools.organize_celeba(extracted, output))
    for split, count in counts.items():
        print(f"{split}: {count} images -> {output / split}")


def main(argv=None) -> int:
    from common import datasets_tools as tools

    parser = argparse.ArgumentParser(prog="python datasets/download.py",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset", choices=("gopro", "div2k", "celeba"))
    parser.add_argument("--output", required=True, help="folder to put the organised data in")
    parser.add_argument("--archive", action="append",
                        help="an archive you downloaded by hand (repeat for several)")
    parser.add_argument("--gamma", action="store_true", help="GoPro: use blur_gamma/ frames")
    parser.add_argument("--overwrite", action="store_true", help="GoPro: allow a non-empty --output")
    parser.add_argument("--base-url", default=tools.DIV2K_BASE_URL,
                        help="DIV2K: where DIV2K_{train,valid}_HR.zip are (a mirror)")
    args = parser.parse_args(argv)
    {"div2k": _div2k, "gopro": _gopro, "celeba": _celeba}[args.dataset](args, tools)
    return 0


if __name__ == "__main__":
    run_cli(main)
