"""python -m webui [--port N] [--host 127.0.0.1] [--weights FAMILY=PATH ...]"""

from __future__ import annotations

import argparse
import signal
import sys

from common.cli import run_cli



def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m webui", description="A local web page to try each trained model on your photos.")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1: this computer only; 0.0.0.0 shows the page "
                        "to your whole network)")
    p.add_argument("--port", type=int, help="port (default: 7860, or the next free one)")
    p.add_argument("--weights", action="append", metavar="FAMILY=PATH",
                   help="weights for one family (repeatable): a run directory or any file that "
                        "family's predict.py accepts; default: the newest run under runs/FAMILY")
    p.add_argument("--max-file-size", default="50mb", help="largest upload accepted (default 50mb)")
    return p


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        import gradio  # noqa: F401
    except ImportError:
        from common.errors import UserError

        raise UserError("the web page needs Gradio: pip install gradio") from None
    from webui.app import build_demo, launch
    from webui.families import FAMILIES
    from webui.models import load_slots, parse_weights_flags

    slots = load_slots(FAMILIES, parse_weights_flags(args.weights, FAMILIES))
    for family, slot in slots.items():
        print(f"{family}: {slot.describe() if slot.ready else slot.problem}", file=sys.stderr)
    from webui.uploads import temp_root

    print(f"uploads and results: {temp_root()} (removed when the page stops)", file=sys.stderr)
    signal.signal(signal.SIGTERM, _interrupt)  # stop as on Ctrl-C, so the folder is removed
    launch(build_demo(slots), host=args.host, port=args.port, max_file_size=args.max_file_size)
    return 0


if __name__ == "__main__":
    run_cli(main)
