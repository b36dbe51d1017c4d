"""`archlab train gpt`, `archlab generate`, `archlab train bert --pretrained` end to end on tiny inputs."""

from __future__ import annotations

import json

import pytest

from archlab.cli import main

TINY_GPT = ["--set", "num_layers=1", "--set", "embed_dim=16", "--set", "num_heads=2", "--set", "context_length=16"]


@pytest.fixture(scope="module")
def gpt_checkpoint(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "gpt"
    code = main(["train", "gpt", "--data", "arithmetic", "--steps", "30", "--eval-every", "30", "--out", str(out),
                 "--json", *TINY_GPT])
    assert code == 0
    return out


def test_train_gpt_and_generate(gpt_checkpoint, capsys):
    capsys.readouterr()
    assert (gpt_checkpoint / "tokenizer.json").is_file()
    args = ["generate", str(gpt_checkpoint), "--prompt", "12+7=", "--max-new-tokens", "20", "--json"]
    assert main([*args, "--seed", "1"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["text"].startswith("12+7=") and len(first["text"]) == 25
    assert set(first["text"]) <= set("0123456789+=\n")
    assert main([*args, "--seed", "1"]) == 0
    assert json.loads(capsys.readouterr().out)["text"] == first["text"]  # seeded


def test_generate_refuses_bad_input(gpt_checkpoint, tmp_path, capsys):
    assert main(["generate", str(gpt_checkpoint), "--prompt", "hello"]) == 1
    assert "not in the tokenizer's vocabulary" in capsys.readouterr().err
    assert main(["generate", str(gpt_checkpoint), "--top-p", "1.5"]) == 2
    out = tmp_path / "mlp"
    assert main(["train", "mlp", "--data", "iris", "--epochs", "1", "--out", str(out), "--json"]) == 0
    capsys.readouterr()
    assert main(["generate", str(out)]) == 2
    assert "cannot generate" in capsys.readouterr().err


def test_train_bert_from_hf(tmp_path, capsys):
    transformers = pytest.importorskip("transformers")
    words = ["good", "bad", "film", "plot", "fine", "dull", "a", "very"]
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]
    hf = tmp_path / "hf"
    config = transformers.BertConfig(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=1,
                                     num_attention_heads=2, intermediate_size=32, max_position_embeddings=32)
    transformers.BertModel(config).save_pretrained(hf)
    (hf / "vocab.txt").write_text("\n".join(vocab) + "\n")
    data = tmp_path / "data" / "sst2"
    data.mkdir(parents=True)
    rows = ["sentence\tlabel"] + [f"a {'very good' if i % 2 else 'dull'} film \t{i % 2}" for i in range(40)]
    (data / "train.tsv").write_text("\n".join(rows) + "\n")
    (data / "dev.tsv").write_text("\n".join(rows[:9]) + "\n")
    out = tmp_path / "bert"
    code = main(["train", "bert", "--data", "sst2", "--data-dir", str(tmp_path / "data"), "--pretrained", str(hf),
                 "--steps", "3", "--out", str(out), "--json"])
    assert code == 0, capsys.readouterr().err
    result = json.loads(capsys.readouterr().out)
    assert "test_accuracy" in result["metrics"]
    saved = json.loads((out / "config.json").read_text())
    assert saved["model"]["kwargs"]["embed_dim"] == 16 and saved["data"]["options"]["tokenizer"] == str(hf)
    assert main(["evaluate", str(out), "--data-dir", str(tmp_path / "data"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["metrics"]["test_accuracy"] == result["metrics"]["test_accuracy"]
    assert main(["train", "lstm", "--data", "sst2", "--data-dir", str(tmp_path / "data"), "--pretrained", str(hf)]) == 2


def test_train_bert_from_hf_on_a_text_table_of_ones_own(tmp_path, capsys):
    transformers = pytest.importorskip("transformers")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "good", "bad", "film", "a", "very", "dull"]
    hf = tmp_path / "hf"
    config = transformers.BertConfig(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=1,
                                     num_attention_heads=2, intermediate_size=32, max_position_embeddings=32)
    transformers.BertModel(config).save_pretrained(hf)
    (hf / "vocab.txt").write_text("\n".join(vocab) + "\n")
    table = tmp_path / "reviews.csv"
    table.write_text("text,label\n" + "".join(f"a {'very good' if i % 2 else 'dull'} film,{'pos' if i % 2 else 'neg'}\n"
                                              for i in range(60)))
    out = tmp_path / "bert"
    code = main(["train", "bert", "--data", str(table), "--data-format", "text-table", "--pretrained", str(hf),
                 "--steps", "3", "--out", str(out), "--json"])
    assert code == 0, capsys.readouterr().err
    result = json.loads(capsys.readouterr().out)
    saved = json.loads((out / "config.json").read_text())
    assert saved["model"]["kwargs"]["embed_dim"] == 16 and saved["data"]["options"]["tokenizer"] == str(hf)
    assert main(["evaluate", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["metrics"]["test_accuracy"] == result["metrics"]["test_accuracy"]
    new = tmp_path / "new.csv"
    new.write_text("text\na very good film\na dull film\n" + "a " * 40 + "film\n")  # longer than the 32 positions
    assert main(["predict", str(out), str(new)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "row,prediction,p_neg,p_pos" and len(lines) == 4
    # the folder's tokenizer is the only one that gives the model its token ids
    assert main(["train", "bert", "--data", str(table), "--data-format", "text-table", "--pretrained", str(hf),
                 "--data-set", "tokenizer=char", "--steps", "1", "--out", str(tmp_path / "b2")]) == 2
    assert "brings its own tokenizer" in capsys.readouterr().err
