"""export.quantize: K-quants through llama.cpp's own quantizer."""
from __future__ import annotations

import pytest

from helpers.export_models import gguf_reader


def test_k_quant_through_llama_cpp(tmp_path):
    import gguf

    from export.gguf_writer import write_gguf
    from export.quantize import quantize_gguf
    from export.verify import verify_gguf
    from helpers.tiny import build_tiny_model

    # K-quants work on rows of 256: use hidden 256 so most tensors really become Q4_K/Q6_K.
    model = build_tiny_model(tmp_path / "m256", hidden_size=256, layers=2, heads=4, kv_heads=2)
    f16 = write_gguf(model, tmp_path / "f16.gguf", "F16")
    out = quantize_gguf(f16, tmp_path / "q4km.gguf", "q4_k_m")
    types = {t.tensor_type for t in gguf_reader(out).tensors}
    assert gguf.GGMLQuantizationType.Q4_K in types
    assert out.stat().st_size < f16.stat().st_size
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left
    result = verify_gguf(out, model)
    assert result.agreement >= 0.6


def test_k_quant_falls_back_for_small_rows(tiny, tmp_path):
    """Rows of 64 are not a multiple of 256: llama.cpp picks compatible types instead."""
    import gguf

    from export.gguf_writer import write_gguf
    from export.quantize import quantize_gguf

    f16 = write_gguf(tiny["llama"], tmp_path / "f16.gguf", "F16")
    out = quantize_gguf(f16, tmp_path / "q.gguf", "Q4_K_M")
    types = {t.tensor_type for t in gguf_reader(out).tensors}
    assert gguf.GGMLQuantizationType.Q4_K not in types
    assert types & {gguf.GGMLQuantizationType.Q5_0, gguf.GGMLQuantizationType.Q8_0,
                    gguf.GGMLQuantizationType.Q4_0, gguf.GGMLQuantizationType.Q5_1}


def test_unknown_quant_names_valid_ones(tmp_path):
    from export.quantize import quantize_gguf

    with pytest.raises(ValueError, match="Q4_K_M"):
        quantize_gguf(tmp_path / "in.gguf", tmp_path / "out.gguf", "Q9_Z")


def test_failed_quantize_leaves_no_file(tmp_path):
    from export.errors import ExportError
    from export.quantize import quantize_gguf

    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF but not really")
    with pytest.raises(ExportError, match="could not quantize"):
        quantize_gguf(bad, tmp_path / "out.gguf", "Q4_0")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.gguf"]
