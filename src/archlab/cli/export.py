"""`archlab export CKPT --format onnx|torchscript --out FILE`: a checkpoint's forward as a file that
runs without archlab, checked against torch on the checkpoint's test inputs before it is kept."""

from __future__ import annotations

from .common import add_common, add_verify, emit_json, positive_float


def add_export(sub) -> None:
    p = sub.add_parser("export", help="export a checkpoint to ONNX or TorchScript (checked against torch)")
    p.add_argument("checkpoint")
    p.add_argument("--format", choices=("onnx", "torchscript"), default="onnx")
    p.add_argument("--out", default=None, help="the file to write (default: CKPT/model.onnx or CKPT/model.pt); "
                                               "an autoencoder writes OUT's stem + .encoder and .decoder")
    p.add_argument("--atol", type=positive_float, default=1e-4,
                   help="largest difference from torch allowed, absolute and relative (default: 1e-4)")
    add_common(p, device=False)
    add_verify(p)
    p.set_defaults(run=run_export)


def run_export(args) -> int:
    from .. import jobs

    result = jobs.export_checkpoint(args.checkpoint, args.out, format=args.format, data_dir=args.data_dir,
                                    atol=args.atol, verify=args.verify)
    if args.json:
        emit_json({**result.summary(), "files": result.details["files"]})
        return 0
    for file in result.details["files"]:
        print(f"{file['path']}: {args.format} {file['graph']}, largest difference from torch "
              f"{file['max_difference']:.2g} on the test inputs")
    return 0


COMMANDS = (add_export,)
