"""A local web page to try every family's trained generator on your own photos.

    pip install gradio
    python -m webui [--port 7860] [--host 127.0.0.1] [--weights FAMILY=PATH ...]

One tab per family (DeblurGAN, SRGAN, DGF, GLCIC). Each tab finds the newest run of its family
under ``runs/`` (as ``predict.py`` does), or uses ``--weights FAMILY=PATH`` (any file that family's
``predict.py`` accepts). Modules, one concern each:

- ``families``: what differs between the tabs (labels, options, bundled samples, baselines);
- ``models``:   loading each family's generator through ``<family>.inference.load`` (cached);
- ``uploads``:  the private temporary folder that holds every upload and result;
- ``masks``:    the GLCIC hole from the painted layer or an uploaded mask;
- ``compare``:  PSNR / SSIM against a reference, and the table shown on the page;
- ``restore``:  the functions behind the Run buttons (no Gradio in them; unit-tested);
- ``app``:      the Gradio page and its launch settings.

The package imports the families; ``common`` never imports it. Gradio is optional: only this
package needs it.
"""
