"""`archlab.models.bert.from_hf` against `transformers.BertModel` on a small random checkpoint."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from archlab.errors import CheckpointError, DataError
from archlab.models.bert import from_hf

transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def hf_folder(tmp_path_factory):
    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                     intermediate_size=37, max_position_embeddings=40, type_vocab_size=2)
    model = transformers.BertModel(config).eval()
    path = tmp_path_factory.mktemp("bert")
    model.save_pretrained(path)
    return path, model


def inputs():
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, 99, (3, 11), generator=g)
    mask = torch.ones(3, 11, dtype=torch.long)
    mask[1, 7:] = 0
    mask[2, 3:] = 0
    types = torch.randint(0, 2, (3, 11), generator=g)
    return ids, mask, types


def test_from_hf_matches_transformers(hf_folder):
    path, reference = hf_folder
    ours = from_hf(path)
    ids, mask, types = inputs()
    with torch.no_grad():
        expected = reference(input_ids=ids, attention_mask=mask, token_type_ids=types)
        hidden, pooled = ours(ids, mask, types)
    torch.testing.assert_close(hidden, expected.last_hidden_state, rtol=0, atol=1e-5)
    torch.testing.assert_close(pooled, expected.pooler_output, rtol=0, atol=1e-5)


def test_pytorch_model_bin_is_read_too(hf_folder, tmp_path):
    path, reference = hf_folder
    (tmp_path / "config.json").write_text((path / "config.json").read_text())
    torch.save({f"bert.{k}": v for k, v in load_file(path / "model.safetensors").items()},
               tmp_path / "pytorch_model.bin")
    ids, mask, types = inputs()
    with torch.no_grad():
        torch.testing.assert_close(from_hf(tmp_path)(ids, mask, types)[1],
                                   reference(input_ids=ids, attention_mask=mask, token_type_ids=types).pooler_output,
                                   rtol=0, atol=1e-5)


def test_missing_and_mismatched_tensors_are_named(hf_folder, tmp_path):
    path, _ = hf_folder
    state = load_file(path / "model.safetensors")
    (tmp_path / "config.json").write_text((path / "config.json").read_text())
    save_file({k: v for k, v in state.items() if k != "encoder.layer.1.output.dense.weight"},
              tmp_path / "model.safetensors")
    with pytest.raises(CheckpointError, match="'encoder.layer.1.output.dense.weight'.* missing"):
        from_hf(tmp_path)
    config = json.loads((path / "config.json").read_text())
    config["intermediate_size"] = 40
    (tmp_path / "config.json").write_text(json.dumps(config))
    save_file(state, tmp_path / "model.safetensors")
    with pytest.raises(CheckpointError, match=r"'encoder.layer.0.intermediate.dense.weight' has shape .*\(37, 32\).*"
                                              r"expects \(40, 32\)"):
        from_hf(tmp_path)


def test_mask_that_does_not_match_the_ids_is_refused(hf_folder):
    ours = from_hf(hf_folder[0])
    ids, mask, _ = inputs()
    with pytest.raises(DataError, match=r"attention_mask must have the shape of the token ids \(3, 11\); got \(3, 10\)"):
        ours(ids, mask[:, :10])
    with pytest.raises(DataError, match=r"token ids must be in \[0, 99\)"):
        ours(ids + 99, mask)
    with pytest.raises(DataError, match="longer than the context of 40"):
        ours(torch.zeros(1, 41, dtype=torch.long))
