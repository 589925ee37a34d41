"""Copies of the Phi-3-architecture test model's OpenVINO exports whose output has one logit per token of the tokenizer.

The test model's tokenizer has 49157 entries (SmolLM2's 49152 and Phi-3's chat tokens), its model 49152 logits: in
OpenVINO GenAI 2026.4 a draft model and a JSON schema then cannot share a pipeline (models/engines/assisted.py). These
copies add rows of zeros to the lm_head's weights up to the tokenizer's size, as a model whose vocabulary was padded to
its tokenizer would be: the extra ids get logit 0 and are never an answer's, so the model answers as before (a test
checks that), and a draft and JSON answers can meet. Built once per machine beside the test model (seconds), into a
temporary folder renamed when complete.

    python tests/support/padded_vocab.py        # build them, print the folders
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from models.engines.assisted import logits_width, vocabulary_size  # noqa: E402

EXPORTS = ("openvino-fp16", "openvino-int4")


def pad_to_tokenizer(src: Path, dst: Path) -> None:
    import numpy as np
    import openvino as ov
    import openvino.opset13 as ops

    width = vocabulary_size(src)
    model = ov.Core().read_model(str(src / "openvino_model.xml"))
    lm_head = model.output(0).get_node().input_value(0).get_node()
    if lm_head.get_type_name() != "MatMul":
        raise RuntimeError(f"{src}: the logits do not come from a MatMul ({lm_head.get_type_name()})")
    weights = lm_head.input_value(1)
    axis = 0 if lm_head.get_attributes()["transpose_b"] else 1
    shape = [weights.get_partial_shape()[i].get_length() for i in range(2)]
    missing = width - shape[axis]
    if missing <= 0:
        raise RuntimeError(f"{src}: {shape[axis]} logits, the tokenizer {width}: nothing to pad")
    shape[axis] = missing
    zeros = ops.constant(np.zeros(shape, dtype=weights.get_element_type().to_dtype()))
    lm_head.input(1).replace_source_output(ops.concat([weights, zeros], axis).output(0))
    model.validate_nodes_and_infer_types()
    tmp = dst.with_name(dst.name + ".part")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for f in src.iterdir():
        if f.is_file() and not f.name.startswith("openvino_model."):
            shutil.copy2(f, tmp / f.name)
    ov.save_model(model, str(tmp / "openvino_model.xml"), compress_to_fp16=False)
    if logits_width(tmp) != width:
        raise RuntimeError(f"{tmp}: the padded copy has {logits_width(tmp)} logits, not {width}")
    tmp.rename(dst)


def build(exports: dict[str, Path]) -> dict[str, Path]:
    """{export: padded copy} for the FP16 and INT4 exports (tools/phi3_test_model.py's `exports`)."""
    out = {}
    for name in EXPORTS:
        src = exports[name]
        dst = src.parent / f"{name}-vocab{vocabulary_size(src)}"
        if not (dst / "openvino_model.xml").is_file():
            pad_to_tokenizer(src, dst)
        out[name] = dst
    return out


if __name__ == "__main__":
    from tools.phi3_test_model import build as build_test_model

    for name, folder in build(build_test_model().exports).items():
        print(name, folder)
