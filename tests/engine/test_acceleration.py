"""Mixed precision and compilation in `fit`, and the refusals that go with them."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

import archlab
from archlab.engine import ClassificationTask, TrainConfig, acceleration, fit
from archlab.engine.acceleration import Precision
from archlab.errors import ConfigError

OPTIONS = dict(steps=4, batch_size=32, quiet=True, seed=2, device="cpu",
               model_kwargs={"channels": [4], "hidden_dims": [], "dropout": 0.0})


def weights(path):
    return load_file(path / "model.safetensors")


def test_16_mixed_on_cpu_is_refused_pointing_to_bf16():
    with pytest.raises(ConfigError, match="needs a CUDA GPU.*--precision bf16"):
        Precision("16-mixed", torch.device("cpu"))
    with pytest.raises(ConfigError, match="'precision' parameter of TrainConfig must be one of"):
        TrainConfig(precision="fp8").validate()


def test_nccl_without_a_gpu_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="--backend nccl needs CUDA GPUs.*gloo"):
        archlab.train("cnn", "digits", backend="nccl", **OPTIONS)


class DtypeSpy(ClassificationTask):
    """Records the dtype of the logits of each training step."""

    def __init__(self):
        super().__init__(10)
        self.dtypes = []

    def training_step(self, model, batch):
        logits = self.forward(model, batch)
        self.dtypes.append(logits.dtype)
        return F.cross_entropy(logits, batch["y"])


def test_bf16_autocasts_the_forward_and_keeps_float32_weights():
    data = archlab.data.load_dataset("digits")
    model = archlab.create_model("cnn", in_channels=1, num_classes=10, input_size=[8, 8], channels=[4],
                                 hidden_dims=[], dropout=0.0)
    task = DtypeSpy()
    fit(model, task, data, TrainConfig(steps=3, batch_size=32, quiet=True, precision="bf16", device="cpu"))
    assert task.dtypes == [torch.bfloat16] * 3
    assert all(p.dtype == torch.float32 and torch.isfinite(p).all() for p in model.parameters())


def test_64_trains_weights_data_and_new_tensors_in_float64_and_restores_the_default_dtype(tmp_path):
    class NewTensorSpy(DtypeSpy):
        def training_step(self, model, batch):
            self.dtypes.append((batch["x"].dtype, batch["y"].dtype, torch.zeros(1).dtype))
            return super().training_step(model, batch)

    data = archlab.data.load_dataset("digits")
    model = archlab.create_model("cnn", in_channels=1, num_classes=10, input_size=[8, 8], channels=[4],
                                 hidden_dims=[], dropout=0.0)
    task = NewTensorSpy()
    fit(model, task, data, TrainConfig(steps=2, batch_size=32, quiet=True, precision="64", device="cpu"),
        out=tmp_path / "run")
    assert task.dtypes[0::2] == [(torch.float64, torch.int64, torch.float64)] * 2  # each step's batch
    assert task.dtypes[1::2] == [torch.float64] * 2  # and its logits
    assert all(p.dtype == torch.float64 for p in model.parameters())
    assert torch.get_default_dtype() == torch.float32
    assert all(w.dtype == torch.float64 for w in weights(tmp_path / "run").values() if w.is_floating_point())


def test_bf16_trains_close_to_float32(tmp_path):
    archlab.train("cnn", "digits", out=tmp_path / "32", **OPTIONS)
    archlab.train("cnn", "digits", out=tmp_path / "bf16", precision="bf16", **OPTIONS)
    full, half = weights(tmp_path / "32"), weights(tmp_path / "bf16")
    for key in full:
        assert not torch.equal(full[key], half[key]) or full[key].numel() < 8, key
        torch.testing.assert_close(half[key], full[key], rtol=0, atol=5e-2)


def test_a_resumed_run_keeps_its_precision(tmp_path):
    archlab.train("cnn", "digits", out=tmp_path / "run", **OPTIONS)
    with pytest.raises(ConfigError, match=r"precision \(saved '32', given 'bf16'\)"):
        archlab.train("cnn", "digits", out=tmp_path / "run", resume=True, precision="bf16", **OPTIONS)


def test_compile_trains_as_eager_with_the_same_checkpoint_names(tmp_path, monkeypatch):
    monkeypatch.setattr(acceleration, "COMPILE_BACKEND", "eager")  # dynamo's capture, no code generation
    archlab.train("cnn", "digits", out=tmp_path / "eager", **OPTIONS)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = archlab.train("cnn", "digits", out=tmp_path / "compiled", compile=True, **OPTIONS)
    assert result.model._compiled_call_impl is not None
    eager, compiled = weights(tmp_path / "eager"), weights(tmp_path / "compiled")
    assert eager.keys() == compiled.keys()
    for key in eager:
        torch.testing.assert_close(compiled[key], eager[key], rtol=0, atol=1e-6)


def test_a_model_that_cannot_compile_runs_eagerly_after_one_warning(tmp_path, monkeypatch):
    def broken(graph, example_inputs):
        raise NotImplementedError("this backend compiles nothing")

    monkeypatch.setattr(acceleration, "COMPILE_BACKEND", broken)
    archlab.train("cnn", "digits", out=tmp_path / "eager", **OPTIONS)
    with pytest.warns(RuntimeWarning, match="could not be compiled.*compiles nothing.*runs eagerly") as caught:
        archlab.train("cnn", "digits", out=tmp_path / "fallback", compile=True, **OPTIONS)
    assert len([w for w in caught if "could not be compiled" in str(w.message)]) == 1
    eager, fallback = weights(tmp_path / "eager"), weights(tmp_path / "fallback")
    for key in eager:
        assert torch.equal(fallback[key], eager[key]), key


def test_no_compiler_on_the_platform_falls_back_with_one_warning(tmp_path, monkeypatch):
    monkeypatch.setattr(acceleration, "COMPILE_BACKEND", "inductor")
    monkeypatch.setattr(acceleration.shutil, "which", lambda name: None)
    with pytest.warns(RuntimeWarning, match="inductor needs a C\\+\\+ compiler on CPU.*runs eagerly"):
        result = archlab.train("cnn", "digits", out=tmp_path / "run", compile=True, **OPTIONS)
    assert result.model._compiled_call_impl is None


@pytest.mark.skipif(not torch.cuda.is_available(), reason="float16 with a GradScaler needs a CUDA GPU")
def test_16_mixed_on_cuda_scales_the_loss_and_checkpoints_the_scaler(tmp_path):
    from archlab.engine.checkpoint import read_training_state

    options = {**OPTIONS, "device": "cuda"}
    archlab.train("cnn", "digits", out=tmp_path / "run", precision="16-mixed", **options)
    state = read_training_state(tmp_path / "run")
    assert state["grad_scaler"]["scale"] > 0
    assert all(torch.isfinite(t).all() for t in weights(tmp_path / "run").values())
