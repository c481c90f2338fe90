"""The Gradio page: one tab per family, wired to webui.restore, and its launch settings.

Every Run button shares one queue slot (``concurrency_id="model"``), so one model runs at a time
whichever tab asked; waiting requests are bounded (``QUEUE_SIZE``). Uploads above ``--max-file-size``
are refused by Gradio before they reach the disk, and go only to the page's temporary folder.
"""

import os

from common.image_io import IMAGE_EXTENSIONS
from webui import restore
from webui.compare import code_line
from webui.families import FAMILIES, Family, sample_files, sample_names
from webui.models import PRECISIONS
from webui.uploads import request_folder, temp_root, user_message

QUEUE_SIZE = 16         # requests waiting at most; more get "queue full"
TILE_CHOICES = ["auto", "whole image", "128", "256", "512", "1024"]
# System fonts: the default theme would fetch Google fonts, which an offline machine cannot.
_FONTS = ["ui-sans-serif", "system-ui", "sans-serif"]
_MONO = ["ui-monospace", "monospace"]
CSS = ".report table {font-size: 0.85em} .report td {white-space: nowrap}"


def precision_info(family: str) -> str:
    """The Precision dropdown's note: what auto picks for this family on this machine."""
    from common.precision import resolve_inference_precision

    return (f"auto = {resolve_inference_precision('auto', family)} here (16-bit where its output stays "
            "within 40 dB PSNR of float32); float32 = the exact float32 path")


def _gradio():
    temp_root()  # before Gradio reads GRADIO_TEMP_DIR
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    import gradio as gr

    return gr


def _missing(gr, family: Family, slot) -> None:
    gr.Markdown(
        f"### No {family.title} model\n\n{code_line(slot.problem)}\n\nTrain one with `{family.train_command}` "
        f"(it is found in `runs/{family.key}/`), or start the page with "
        f"`python -m webui --weights {family.key}=PATH` (any file `{family.key}/predict.py` accepts).",
        elem_id=f"{family.key}-missing")


def _results(gr, family: Family):
    """The right-hand column: slider, gallery (several photos), report, downloads."""
    slider = gr.ImageSlider(label=f"{family.before_label} | Result (drag the bar; scroll to zoom)",
                            type="filepath", format="png", interactive=False,
                            buttons=["download", "fullscreen"], elem_id=f"{family.key}-slider")
    gallery = gr.Gallery(label="All results: click one to compare it above", columns=4, height=180,
                         visible=False, format="png", elem_id=f"{family.key}-gallery")
    report = gr.Markdown(elem_id=f"{family.key}-report", elem_classes=["report"])
    downloads = gr.File(label="Download the results (full-resolution PNG)", file_count="multiple",
                        interactive=False, elem_id=f"{family.key}-downloads")
    return slider, gallery, report, downloads


def _show(gr, outcome: restore.Outcome):
    pairs = [(str(item.before), str(item.result)) for item in outcome.items]
    gallery = [(str(item.result), item.name) for item in outcome.items]
    return (pairs[0] if pairs else None,
            gr.Gallery(value=gallery, visible=len(gallery) > 1),
            outcome.report(),
            [str(item.result) for item in outcome.items] or None,
            pairs)


def _sample_box(gr, family: Family):
    try:
        names = sample_names(family)
    except Exception as error:  # noqa: BLE001 (no samples must not take the page down)
        gr.Markdown(code_line(user_message(error)))
        return None
    return gr.Dropdown(names, value=None, label="Or a bundled sample photo",
                       elem_id=f"{family.key}-sample")


def _restore_tab(gr, family: Family, slot) -> None:
    with gr.Row():
        with gr.Column(scale=1):
            inputs = gr.File(label=family.input_label, file_count="multiple",
                             file_types=list(IMAGE_EXTENSIONS), elem_id=f"{family.key}-inputs")
            references = gr.File(label=family.reference_label, file_count="multiple",
                                 file_types=list(IMAGE_EXTENSIONS), elem_id=f"{family.key}-references")
            sample = _sample_box(gr, family)
            tile = gr.Dropdown(TILE_CHOICES, value="auto", allow_custom_value=True,
                               label="Tile size (input pixels)",
                               info="auto: whole photo up to 512 x 512 result pixels, tiles above; "
                                    "smaller tiles use less memory", elem_id=f"{family.key}-tile")
            precision = gr.Dropdown(list(PRECISIONS), value="auto", label="Precision",
                                    info=precision_info(family.key))
            mode = gr.Checkbox(label=family.mode_option[1]) if family.mode_option else gr.State(False)
            run = gr.Button(family.action, variant="primary", elem_id=f"{family.key}-run")
        with gr.Column(scale=2):
            slider, gallery, report, downloads = _results(gr, family)
    pairs = gr.State([])

    def on_run(files, refs, tile_text, precision_name, mode_on, progress=gr.Progress()):
        outcome = restore.restore_photos(slot, family, files, refs, tile=tile_text,
                                         precision=precision_name, mode=bool(mode_on), progress=progress)
        return _show(gr, outcome)

    run.click(on_run, [inputs, references, tile, precision, mode],
              [slider, gallery, report, downloads, pairs], concurrency_limit=1, concurrency_id="model")
    def on_pick(chosen, evt: gr.SelectData):
        return _pick(chosen, evt.index)

    gallery.select(on_pick, [pairs], [slider])
    if sample is not None:
        def on_sample(name):
            if not name:
                return gr.skip(), gr.skip()
            files = sample_files(family, name, request_folder("samples"), slot.scale())
            return [str(files.image)], [str(files.reference)] if files.reference else None

        sample.change(on_sample, [sample], [inputs, references])


def _pick(pairs, index) -> tuple | None:
    """The (before, result) pair the gallery's click chose."""
    return tuple(pairs[index]) if pairs and isinstance(index, int) and 0 <= index < len(pairs) else None


def _inpaint_tab(gr, family: Family, slot) -> None:
    with gr.Row():
        with gr.Column(scale=1):
            editor = gr.ImageEditor(label=family.input_label, type="filepath", format="png",
                                    sources=["upload"], image_mode="RGBA", transforms=(), layers=False,
                                    brush=gr.Brush(colors=["#ffffff"], default_size=24,
                                                   color_mode="fixed"),
                                    elem_id=f"{family.key}-editor")
            mask_file = gr.File(label="Or a mask (white = hole; replaces the painting)",
                                file_types=list(IMAGE_EXTENSIONS), elem_id=f"{family.key}-mask")
            sample = _sample_box(gr, family)
            blend = gr.Checkbox(label="Poisson blending (the paper's post-processing)",
                                elem_id=f"{family.key}-blend")
            precision = gr.Dropdown(list(PRECISIONS), value="auto", label="Precision",
                                    info=precision_info(family.key))
            run = gr.Button(family.action, variant="primary", elem_id=f"{family.key}-run")
        with gr.Column(scale=2):
            slider, gallery, report, downloads = _results(gr, family)

    def on_run(value, mask_path, blend_on, precision_name, progress=gr.Progress()):
        from webui.masks import editor_parts

        photo, layers = editor_parts(value)
        outcome = restore.fill_hole(slot, family, photo, layers, mask_path, blend=bool(blend_on),
                                    precision=precision_name, name="photo.png", progress=progress)
        return _show(gr, outcome)[:4]

    run.click(on_run, [editor, mask_file, blend, precision], [slider, gallery, report, downloads],
              concurrency_limit=1, concurrency_id="model")
    if sample is not None:
        def on_sample(name):
            if not name:
                return gr.skip(), gr.skip()
            files = sample_files(family, name, request_folder("samples"))
            image = str(files.image)
            return {"background": image, "layers": [], "composite": image}, str(files.mask)

        sample.change(on_sample, [sample], [editor, mask_file])


def build_demo(slots, families=None):
    """The page (a ``gr.Blocks``) for ``slots`` (family -> webui.models.ModelSlot)."""
    gr = _gradio()
    families = families or FAMILIES
    with gr.Blocks(title="GAN image restoration", delete_cache=(1800, 3600)) as demo:
        gr.Markdown("# GAN image restoration\nTry each trained model on your own photos. Results "
                    "stay on this computer; nothing is uploaded elsewhere.", elem_id="title")
        with gr.Tabs():
            for key, family in families.items():
                slot = slots[key]
                with gr.Tab(family.title, id=key, elem_id=f"tab-{key}"):
                    gr.Markdown(family.summary)
                    if not slot.ready:
                        _missing(gr, family, slot)
                        continue
                    gr.Markdown(f"Model: {code_line(slot.describe())}", elem_id=f"{key}-model")
                    if family.key == "glcic_inpaint":
                        _inpaint_tab(gr, family, slot)
                    else:
                        _restore_tab(gr, family, slot)
    demo.queue(default_concurrency_limit=1, max_size=QUEUE_SIZE)
    return demo


def launch(demo, host: str = "127.0.0.1", port: int | None = None, max_file_size: str = "50mb",
           block: bool = True):
    """Serve ``demo``; returns Gradio's ``(app, local_url, share_url)``."""
    gr = _gradio()
    theme = gr.themes.Default(font=_FONTS, font_mono=_MONO)
    return demo.launch(server_name=host, server_port=port, max_file_size=max_file_size,
                       share=False, ssr_mode=False, mcp_server=False, prevent_thread_lock=not block,
                       quiet=not block, theme=theme, css=CSS, footer_links=[])
