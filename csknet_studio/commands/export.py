"""`csknet-studio export SEQUENCE`: a sequence's corrections (and predictions) to HDF5, PNG masks, COCO
JSON or a CVAT segmentation-mask folder (--format).

Reads the project beside the sequence (`<SEQUENCE>.csknet/`, or --project). Corrected frames export
as corrected; propagated frames with their propagated labels (unless --no-propagated); the others as
the model's prediction when a model is given (--checkpoint, or the one the project records when
--include-predictions or --probabilities asks for it), else as 255 (unlabelled). The file records
each frame's origin (`frame_origin`; PNG and CVAT: frames.json; COCO: info.frame_origin).
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

from csknet_studio.commands._alignment import alignment_kwargs, reapply_given_alignment
from csknet_studio.commands._common import SCHEME_HINT, add_scheme_argument, tqdm_progress
from csknet_studio.commands._ir_scale import add_ir_scale_argument, ir_scale_kwargs, remember_ir_scale
from csknet_studio.commands._topics import topic_kwargs
from csknet_studio.core.errors import CancelledError, ExportError
from csknet_studio.core.modes import ALL_MODES, Mode

FORMATS = ("hdf5", "png", "coco", "cvat")
# Where each format goes by default: beside the sequence, named after it.
DEFAULT_SUFFIX = {"hdf5": ".labels.h5", "png": ".masks", "coco": ".coco.json", "cvat": ".cvat"}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("sequence", type=Path, help="the sequence (folder, video pair or HDF5 file)")
    p.add_argument("--project", type=Path, default=None, help="project folder (default: <SEQUENCE>.csknet)")
    p.add_argument("--format", choices=FORMATS, default=None,
                   help="hdf5 (the default: one file), png (indexed PNG masks, as --png DIR), coco (one COCO "
                        "JSON file, RLE masks) or cvat (CVAT / Pascal VOC segmentation-mask folder)")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--out", type=Path, default=None, metavar="PATH",
                     help="file or folder to write (default: <SEQUENCE>.labels.h5, .masks, .coco.json or .cvat)")
    out.add_argument("--png", type=Path, default=None, metavar="DIR",
                     help="write indexed PNG masks (pixel = class id, palette = colours) into DIR instead")
    p.add_argument("--compression", choices=["gzip", "lzf"], default="gzip", help="HDF5 compression")
    p.add_argument("--probabilities", action="store_true",
                   help="also store (T, C, H, W) float16 class probabilities (runs the model)")
    p.add_argument("--copy-images", action="store_true",
                   help="also copy the EO and IR frames (HDF5: into the file; COCO: PNGs in images/ beside it)")
    p.add_argument("--coco-per-class", action="store_true",
                   help="COCO: one annotation per class and frame instead of one per connected object")
    p.add_argument("--checkpoint", type=Path, default=None,
                   help="weights to predict frames nobody corrected (implies --include-predictions; default "
                        "for --include-predictions and --probabilities: the project's)")
    p.add_argument("--include-predictions", action="store_true",
                   help="label the frames nobody corrected with the model's predictions (needs a checkpoint)")
    p.add_argument("--mirror", action="store_true",
                   help="predictions average each frame's softmax with its left-right mirror's (twice the time)")
    prop = p.add_mutually_exclusive_group()
    prop.add_argument("--include-propagated", dest="include_propagated", action="store_true", default=True,
                      help="export propagated frames with their propagated labels (the default)")
    prop.add_argument("--no-propagated", dest="include_propagated", action="store_false",
                      help="treat propagated frames like frames nobody labelled (prediction or 255)")
    p.add_argument("--mode", choices=[m.value for m in ALL_MODES], default="both",
                   help="modalities the model sees (recorded in the file)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or mps (with --checkpoint)")
    p.add_argument("--only-corrected", action="store_true", help="PNG: write corrected frames only")
    p.add_argument("--relink", action="store_true", help="accept a project whose sequence was moved")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_scheme_argument(p)
    add_ir_scale_argument(p)  # radiometric IR: --copy-images then writes ir_celsius (HDF5)


def _predictor(args: argparse.Namespace, session):
    """Load the checkpoint (explicit, else the project's when probabilities are wanted), or None."""
    ckpt = args.checkpoint
    wants = "--probabilities" if args.probabilities else "--include-predictions" if args.include_predictions else ""
    if ckpt is None and wants:
        if session.checkpoint is None:
            raise ExportError(f"{wants} needs a model: pass --checkpoint (project {session.project_path} "
                              "records none)")
        ckpt = Path(session.checkpoint.path)
    if ckpt is None:
        return None, None
    # the engine, imported here: see the package docstring
    from csknet_studio.core.checkpoint import load_checkpoint
    from csknet_studio.core.classes import check_scheme_fits
    from csknet_studio.core.device import resolve_device
    from csknet_studio.core.predictor import Predictor

    device = resolve_device(args.device)
    loaded = load_checkpoint(ckpt, map_location=device)
    check_scheme_fits(loaded.scheme, session.sequence, declared=args.scheme, check_labels=args.scheme is None,
                      source=f"checkpoint {ckpt}", hint=SCHEME_HINT)
    if loaded.scheme.class_names != session.scheme.class_names:
        if args.scheme is not None:  # told the data uses the checkpoint's classes: so does the file
            session.set_scheme(loaded.scheme)
        else:
            raise ExportError(f"checkpoint {ckpt} predicts scheme {loaded.scheme.name!r} but the project uses "
                              f"{session.scheme.name!r}; {SCHEME_HINT}")
    return Predictor(loaded.model, device, loaded.scheme, mirror=args.mirror), loaded.weights_hash


@contextlib.contextmanager
def _cancel_on_signals() -> Iterator[threading.Event]:
    """SIGINT (Ctrl+C) and SIGTERM set the yielded event, which the export polls as its cancel: it
    stops at the next frame, removes its temporary file and leaves any earlier file as it was. A
    second Ctrl+C interrupts at once (the export still cleans up on the way out)."""
    cancelled = threading.Event()
    if threading.current_thread() is not threading.main_thread():  # signals belong to the main thread
        yield cancelled
        return

    def on_signal(signum: int, _frame) -> None:
        if cancelled.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        cancelled.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield cancelled
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _format(args: argparse.Namespace) -> str:
    """The format asked for; ExportError for options that belong to another one."""
    fmt = args.format or ("png" if args.png is not None else "hdf5")
    if args.png is not None and fmt != "png":
        raise ExportError(f"--png DIR writes PNG masks; with --format {fmt} give the target with --out")
    if args.probabilities and fmt in ("coco", "cvat"):
        raise ExportError(f"--probabilities are stored by the HDF5 export only, not by --format {fmt}")
    return fmt


def _export(fmt: str, args: argparse.Namespace, session, probs, weights_hash, mode, progress, include):
    # the engine, imported here: see the package docstring
    from csknet_studio.core.export import export_hdf5, export_png
    from csknet_studio.core.export_formats import export_coco, export_cvat

    target = args.png or args.out or args.sequence.with_name(args.sequence.name + DEFAULT_SUFFIX[fmt])
    if fmt == "png":
        return export_png(session, target, only_corrected=args.only_corrected, progress=progress, **include)
    if fmt == "coco":
        return export_coco(session, target, per_class=args.coco_per_class, copy_images=args.copy_images,
                           progress=progress, **include)
    if fmt == "cvat":
        return export_cvat(session, target, progress=progress, **include)
    return export_hdf5(session, target, compression=args.compression, include_probabilities=probs,
                       copy_images=args.copy_images, checkpoint_hash=weights_hash, mode=mode, progress=progress,
                       **include)


def run(args: argparse.Namespace) -> int:
    # the engine, imported here: see the package docstring
    from tqdm import tqdm

    from csknet_studio.core.edits import Origin
    from csknet_studio.core.export_read import count_origins, read_frame_origins
    from csknet_studio.core.export_writer import prestart as prestart_writer
    from csknet_studio.core.registration import open_aligned
    from csknet_studio.core.session import AnnotationSession

    mode = Mode(args.mode)
    fmt = _format(args)
    if fmt == "hdf5":
        prestart_writer()  # the HDF5 writer process starts while the sequence, session and model open
    seq = open_aligned(args.sequence, project_path=args.project, **topic_kwargs(args), **ir_scale_kwargs(args),
                       **alignment_kwargs(args))
    with _cancel_on_signals() as cancelled, contextlib.ExitStack() as closing:
        closing.callback(seq.close)
        session = AnnotationSession(seq, args.project, autosave=False, relink=args.relink, read_only=True)
        reapply_given_alignment(args, seq)
        remember_ir_scale(args, session.project_path)
        for note in session.open_notes():  # repairs, or another copy writing the project
            print(f"warning: {note}", file=sys.stderr)
        predictor, weights_hash = _predictor(args, session)
        bar = tqdm(total=len(session), unit="frame", disable=args.quiet, desc="export")
        progress = tqdm_progress(bar)

        def predict(i: int):
            """Run the model on frame i; uncorrected frames take its labels."""
            fp = seq[i]
            pred = predictor.predict(fp.eo, fp.ir, mode)
            if session.origin(i) is not Origin.CORRECTED:
                session.set_prediction(i, pred.labels)
            return pred.probs

        probs = predict if (predictor is not None and args.probabilities) else None
        if predictor is not None and probs is None:  # predictions only, before the export
            kept = {Origin.CORRECTED, Origin.PROPAGATED} if args.include_propagated else {Origin.CORRECTED}
            for i in tqdm(range(len(session)), unit="frame", disable=args.quiet, desc="predict"):
                if cancelled.is_set():
                    raise CancelledError(f"export of {args.sequence} cancelled before writing; nothing changed")
                if session.origin(i) not in kept:
                    predict(i)
        include = {"include_predictions": predictor is not None, "include_propagated": args.include_propagated,
                   "cancel": cancelled.is_set}
        try:
            out = _export(fmt, args, session, probs, weights_hash, mode, progress, include)
        finally:
            bar.close()
        counts = count_origins(read_frame_origins(out))
        print(f"wrote {out} ({sum(counts.values())} frames: " + ", ".join(f"{v} {k}" for k, v in counts.items()) + ")")
        return 0
