"""The generate job: decoding threads, and the folder of a `train --seeds` run."""

from __future__ import annotations

import pytest
import torch

from archlab import jobs
from archlab.cli import main
from archlab.jobs.generate import SINGLE_THREAD_PARAMETERS, decoding_threads
from archlab.models.gpt import GPT

TINY = {"num_layers": 1, "embed_dim": 16, "num_heads": 2, "context_length": 16}


@pytest.fixture(scope="module")
def seed_runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "gpt"
    jobs.train_seeds("gpt", "arithmetic", [0, 1], out=out, model_kwargs=TINY, steps=5, eval_every=5, quiet=True)
    return out


def test_a_small_model_decodes_on_one_thread_and_the_setting_is_restored(seed_runs, monkeypatch):
    seen = []
    decode = GPT.generate

    def recording(self, *args, **kwargs):
        seen.append(torch.get_num_threads())
        return decode(self, *args, **kwargs)

    monkeypatch.setattr(GPT, "generate", recording)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        jobs.generate(seed_runs / "seed-0", prompt="1+1=", max_new_tokens=3, device="cpu")
        assert seen == [1] and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_a_large_model_or_another_device_keeps_the_thread_count():
    small = torch.nn.Linear(4, 4)
    large = torch.nn.Linear(SINGLE_THREAD_PARAMETERS, 2, bias=False, device="meta")  # sizes, no memory
    assert decoding_threads(small, torch.device("cpu"), 8) == 1
    assert decoding_threads(large, torch.device("cpu"), 8) == 8
    assert decoding_threads(small, torch.device("meta"), 8) == 8


def test_generate_reads_the_first_seed_of_a_seed_folder(seed_runs, capsys):
    capsys.readouterr()
    args = ["--prompt", "1+1=", "--max-new-tokens", "4", "--seed", "3"]
    assert main(["generate", str(seed_runs), *args]) == 0
    from_folder = capsys.readouterr()
    assert main(["generate", str(seed_runs / "seed-0"), *args]) == 0
    assert from_folder.out == capsys.readouterr().out
    assert from_folder.err.startswith("archlab: note:") and "seed-0" in from_folder.err
