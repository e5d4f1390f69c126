"""One module per CLI sub-command: `add_arguments(parser)` and `run(args) -> int`.

Each `run` imports the engine (torch, h5py, OpenCV, Qt for `gui`) inside itself, deliberately: the
parser imports the module to add its arguments, so `csknet-studio CMD --help` and argument errors
answer at once only while no module here imports the engine at the top.
"""
