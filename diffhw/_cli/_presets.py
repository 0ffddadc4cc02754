"""`diffhw presets`: the shipped hardware, models and profiles."""


from .. import presets
from ._common import dumps_json


def _add_presets(sub, common):
    pr = sub.add_parser("presets", help="list hardware, model and profile presets")
    pr.add_argument("kind", nargs="?", choices=["hardware", "models", "profiles"], default=None)
    pr.add_argument("--json", action="store_true")


def _cmd_presets(args):
    out = {}
    if args.kind in (None, "hardware"):
        out["hardware"] = {n: presets.hardware_description(n) for n in presets.list_hardware()}
    if args.kind in (None, "models"):
        out["models"] = {n: presets.model_description(n) for n in presets.list_models()}
    if args.kind in (None, "profiles"):
        out["profiles"] = {n: presets.profile_description(n) for n in presets.list_profiles()}
    if args.json:
        print(dumps_json(out))
        return
    for kind, items in out.items():
        print(f"{kind}:")
        width = max(len(n) for n in items)
        for n, desc in items.items():
            print(f"  {n:<{width}}  {desc}")


COMMANDS = {"presets": (_add_presets, _cmd_presets)}
