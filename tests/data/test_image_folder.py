"""Image folders (torchvision's ImageFolder layout): written by the tests from scikit-learn's digits,
read in memory and streamed, trained on, and each bad input refused by name."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import archlab
from archlab.data import load_data
from archlab.data.image_folder import (
    ImageFileSplit, ImageTensorSplit, from_image_folder, image_files, is_image_folder, labeled_images, parse_bytes,
    read_images,
)
from archlab.data.sources import format_info, source_options
from archlab.errors import ConfigError, DataError
from archlab.validation import Text
from tests.conftest import SHARED_DATA


def write_digits(root: Path, count: int | None = None, *, per_class: int | None = None, rgb_every: int = 0,
                 suffix: str = ".png") -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 8x8 digits as 0-255 images in one folder per class; returns the pixels and labels."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images, labels = (digits.images * (255 / 16)).round().astype(np.uint8), digits.target
    if per_class is not None:
        keep = np.concatenate([np.flatnonzero(labels == c)[:per_class] for c in range(10)])
        images, labels = images[keep], labels[keep]
    if count is not None:
        images, labels = images[:count], labels[:count]
    for i, (image, label) in enumerate(zip(images, labels)):
        folder = root / str(label)
        folder.mkdir(parents=True, exist_ok=True)
        img = Image.fromarray(image)
        if rgb_every and i % rgb_every == 0:
            img = img.convert("RGB")
        img.save(folder / f"{i:04d}{suffix}")
    return images, labels


@pytest.fixture(scope="module")
def digits(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("digits")
    write_digits(root)
    return root


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("small")
    write_digits(root, per_class=12)
    return root


def test_digits_folder_trains_cnn(digits):
    data = load_data(digits)  # detected by its layout
    spec = data.spec
    assert spec.kind == "image" and spec.input_shape == (1, 8, 8) and spec.num_classes == 10
    assert spec.class_names == [str(c) for c in range(10)]
    assert isinstance(data.train, ImageTensorSplit)
    assert [len(data[s]) for s in ("train", "val", "test")] == [1257, 270, 270]
    assert spec.options == {"source": str(digits.resolve()), "format": "image-folder", "target": None, "seed": 0,
                            "image_size": None, "grayscale": None, "normalize": True, "augment": False,
                            "memory_budget": "2GB", "skip_bad_files": False, "num_workers": 2}
    result = archlab.train("cnn", data, epochs=2, quiet=True)
    assert result.metrics["test_accuracy"] > 0.8


def test_normalized_with_training_statistics(small):
    data = from_image_folder(small, num_workers=0)
    assert isinstance(data.train, ImageTensorSplit)  # small fits the budget: decoded once
    train_files = from_image_folder(small, memory_budget=0, num_workers=0).train.paths
    pixels = np.stack([np.asarray(Image.open(p), np.float64) for p in train_files]) / 255
    mean, std = np.asarray(data.spec.preprocess["mean"]), np.asarray(data.spec.preprocess["std"])
    assert mean.shape == std.shape == (1, 1, 1)  # per channel, broadcasting over (N, C, H, W)
    np.testing.assert_allclose(mean.ravel(), [pixels.mean()], rtol=1e-6)
    np.testing.assert_allclose(std.ravel(), [pixels.std()], rtol=1e-6)
    x = data.train["x"].double()
    torch.testing.assert_close(x.mean(), torch.tensor(0.0, dtype=torch.float64), atol=1e-5, rtol=0)
    torch.testing.assert_close(x.std(unbiased=False), torch.tensor(1.0, dtype=torch.float64), atol=1e-5, rtol=0)


def test_split_is_stratified_and_seeded(small):
    a, b, c = (from_image_folder(small, seed=s, memory_budget=0, num_workers=0) for s in (0, 0, 1))
    assert [len(a[s]) for s in ("train", "val", "test")] == [84, 18, 18]
    for name in ("train", "val", "test"):
        assert a[name].paths == b[name].paths
    for name, share in (("train", {8, 9}), ("val", {1, 2}), ("test", {1, 2})):  # 70/15/15 of 12 per class
        assert set(np.bincount(a[name]["y"].numpy(), minlength=10).tolist()) <= share
    assert a["test"].paths != c["test"].paths
    train, val, test = (set(a[s].paths) for s in ("train", "val", "test"))
    assert not train & val and not train & test and not val & test


def test_streaming_gives_the_in_memory_batches_and_resumes(small):
    memory = from_image_folder(small, augment=True, num_workers=0)
    streamed = from_image_folder(small, augment=True, memory_budget="1KB", num_workers=2)
    assert isinstance(streamed.train, ImageFileSplit) and isinstance(memory.train, ImageTensorSplit)
    assert streamed.spec.preprocess == memory.spec.preprocess
    rng = torch.get_rng_state()
    whole = list(streamed.train.batches(16, shuffle=True, seed=7))
    assert torch.equal(torch.get_rng_state(), rng)  # the global RNG (dropout, ...) is a resumed run's to replay
    assert len(whole) == streamed.train.num_batches(16) == 6
    for ours, reference in zip(whole, memory.train.batches(16, shuffle=True, seed=7)):
        torch.testing.assert_close(ours["x"], reference["x"], rtol=0, atol=0)
        assert torch.equal(ours["y"], reference["y"])
    resumed = list(streamed.train.batches(16, shuffle=True, seed=7, start=4))
    for ours, reference in zip(resumed, whole[4:], strict=True):
        assert torch.equal(ours["x"], reference["x"]) and torch.equal(ours["y"], reference["y"])
    other = next(iter(streamed.train.batches(16, shuffle=True, seed=8)))
    assert not torch.equal(other["y"], whole[0]["y"])
    # evaluation order: the files in order, not augmented
    plain = torch.cat([b["x"] for b in streamed.val.batches(8)])
    torch.testing.assert_close(plain, memory.val["x"], rtol=0, atol=0)
    assert torch.equal(streamed.val["y"], memory.val["y"])
    with pytest.raises(DataError, match="no 'x' tensor in memory.*memory_budget"):
        streamed.val["x"]
    ones = streamed.train.subset(torch.nonzero(streamed.train["y"] == 1).squeeze(1))
    assert len(ones) == 8 and set(ones["y"].tolist()) == {1}


def test_a_rank_reads_only_its_part_of_each_streamed_batch(small, monkeypatch):
    """Under torchrun each rank decodes its contiguous rows of every batch, with the crops and flips
    those rows get in the whole batch: the ranks' parts, joined, are the one-process batches."""
    import archlab.data.image_folder as image_folder

    streamed = from_image_folder(small, augment=True, memory_budget="1KB", num_workers=0)
    whole = list(streamed.train.batches(16, shuffle=True, seed=7))
    opened = []
    decode = image_folder.decode
    monkeypatch.setattr(image_folder, "decode", lambda path, **kw: opened.append(path) or decode(path, **kw))
    parts = [list(streamed.train.batches(16, shuffle=True, seed=7, shard=(rank, 3))) for rank in range(3)]
    assert len(opened) == len(set(opened)) == len(streamed.train)  # every file once, by one rank
    for i, reference in enumerate(whole):
        pieces = [p[i] for p in parts]
        assert [b["shard_rows"] for b in pieces] == [(r * 16 // 3, (r + 1) * 16 // 3, 16) for r in range(3)] \
            or len(reference["y"]) < 16
        joined = torch.cat([b["x"] for b in pieces if b["shard_count"]])
        torch.testing.assert_close(joined, reference["x"], rtol=0, atol=0)
        assert torch.equal(torch.cat([b["y"] for b in pieces if b["shard_count"]]), reference["y"])
    resumed = list(streamed.train.batches(16, shuffle=True, seed=7, start=4, shard=(1, 3)))
    for ours, reference in zip(resumed, parts[1][4:], strict=True):
        assert torch.equal(ours["x"], reference["x"])


def test_augmentation_crops_and_flips_only_training_batches(small):
    data = from_image_folder(small, augment=True, num_workers=0)
    plain = from_image_folder(small, num_workers=0)
    augmented = next(iter(data.train.batches(32, shuffle=True, seed=1)))["x"]
    same = next(iter(plain.train.batches(32, shuffle=True, seed=1)))["x"]
    assert augmented.shape == same.shape and not torch.equal(augmented, same)
    # each image is one of the 3 x 3 shifts of the original padded by 8 // 8 = 1, flipped or not
    padded = torch.nn.functional.pad(same, (1, 1, 1, 1))
    for image, original in zip(augmented, padded):
        windows = [original[:, dy:dy + 8, dx:dx + 8] for dy in range(3) for dx in range(3)]
        assert any(torch.equal(image, w) or torch.equal(image, w.flip(-1)) for w in windows)
    torch.testing.assert_close(next(iter(data.train.batches(32)))["x"], plain.train["x"][:32], rtol=0, atol=0)
    assert data.val.augment is False


def test_streamed_folder_trains(small):
    data = from_image_folder(small, memory_budget=1, num_workers=1)
    result = archlab.train("cnn", data, epochs=1, batch_size=32, quiet=True)
    assert 0.0 <= result.metrics["test_accuracy"] <= 1.0


def test_a_streamed_run_killed_mid_epoch_resumes_to_the_same_weights(small, tmp_path):
    from safetensors.torch import load_file

    options = dict(epochs=2, batch_size=16, lr=3e-3, quiet=True, seed=5, checkpoint_every=4,
                   model_kwargs={"channels": [4], "hidden_dims": [16]})

    def data():
        return from_image_folder(small, augment=True, memory_budget=0, num_workers=1)

    class DieAt:
        def on_step_end(self, state):
            if state.step == 9:  # epoch 2, batch 3: the resumed epoch starts at batch 2 (step 8's checkpoint)
                raise SystemExit("killed")

    archlab.train("cnn", data(), out=tmp_path / "full", **options)
    with pytest.raises(SystemExit):
        archlab.train("cnn", data(), out=tmp_path / "cut", callbacks=(DieAt(),), **options)
    archlab.train("cnn", data(), out=tmp_path / "cut", resume=True, **options)
    full, cut = load_file(tmp_path / "full" / "model.safetensors"), load_file(tmp_path / "cut" / "model.safetensors")
    assert full.keys() == cut.keys() and all(torch.equal(full[k], cut[k]) for k in full)


@pytest.mark.parametrize("model, kwargs, options", [
    ("lenet5", {}, {}),
    ("resnet", {}, {}),
    ("ae", {}, {"normalize": False}),  # the Bernoulli decoder models pixels in [0, 1]
    ("vae", {"decoder": "gaussian"}, {}),
])
def test_image_models_train_on_a_folder(small, model, kwargs, options):
    data = from_image_folder(small, grayscale=False, image_size=12, num_workers=0, **options)
    assert data.spec.input_shape == (3, 12, 12)
    result = archlab.train(model, data, model_kwargs=kwargs, steps=2, batch_size=16, quiet=True)
    assert result.metrics


def test_png_jpeg_bmp_and_webp(tmp_path):
    images, _ = write_digits(tmp_path, per_class=10)
    save_options = {".png": {}, ".jpg": {"quality": 95}, ".bmp": {}, ".webp": {"lossless": True}, ".JPEG": {}}
    for i, path in enumerate(sorted(tmp_path.rglob("*.png"))):
        suffix = list(save_options)[i % 5]
        if suffix != ".png":
            Image.open(path).save(path.with_suffix(suffix), **save_options[suffix])
            path.unlink()
    data = from_image_folder(tmp_path, normalize=False, num_workers=0)
    assert sum(len(data[s]) for s in ("train", "val", "test")) == 100
    lossless = [p for p in image_files(tmp_path) if p.suffix in (".png", ".bmp", ".webp")]
    pixels = np.concatenate([read_images(p, data.spec) for p in lossless])[:, 0] * 255
    np.testing.assert_allclose(pixels, images[[int(p.stem) for p in lossless]], atol=1e-3)


def test_grayscale_and_rgb_mixes(tmp_path):
    write_digits(tmp_path / "mixed", per_class=10, rgb_every=3)
    write_digits(tmp_path / "gray", per_class=10)
    assert from_image_folder(tmp_path / "mixed", num_workers=0).spec.input_shape == (3, 8, 8)
    data = from_image_folder(tmp_path / "gray", num_workers=0)
    assert data.spec.input_shape == (1, 8, 8) and data.spec.preprocess["mode"] == "L"
    forced = from_image_folder(tmp_path / "mixed", grayscale=True, num_workers=0)
    assert forced.spec.input_shape == (1, 8, 8)
    rgb = from_image_folder(tmp_path / "gray", grayscale=False, num_workers=0)
    assert rgb.spec.input_shape == (3, 8, 8) and len(rgb.spec.preprocess["mean"]) == 3
    # a gray image as RGB has three equal channels
    x = rgb.train["x"]
    torch.testing.assert_close(x[:, 0], x[:, 1])


def test_resize_to_the_most_common_size_or_image_size(tmp_path):
    write_digits(tmp_path, per_class=10)
    for path in sorted(tmp_path.rglob("*.png"))[:30]:
        Image.open(path).resize((12, 10)).save(path)
    assert from_image_folder(tmp_path, num_workers=0).spec.input_shape == (1, 8, 8)
    assert from_image_folder(tmp_path, image_size=6, num_workers=0).spec.input_shape == (1, 6, 6)
    data = from_image_folder(tmp_path, image_size=[4, 10], num_workers=0)
    assert data.spec.input_shape == (1, 4, 10) and data.train["x"].shape[1:] == (1, 4, 10)
    assert read_images(sorted(tmp_path.rglob("*.png"))[0], data.spec).shape == (1, 1, 4, 10)


def test_train_val_test_folders(tmp_path):
    for split, count in (("train", 40), ("val", 10), ("test", 20)):
        write_digits(tmp_path / split, per_class=count // 10)
    data = load_data(tmp_path)
    assert [len(data[s]) for s in ("train", "val", "test")] == [40, 10, 20]
    assert all(Path(p).parts[-3] == "test" for p in image_files(tmp_path / "test"))
    assert is_image_folder(tmp_path) and is_image_folder(tmp_path / "train")
    assert not is_image_folder(tmp_path / "train" / "3")


def test_a_missing_val_folder_is_held_out_of_train(tmp_path):
    write_digits(tmp_path / "train", per_class=20)
    write_digits(tmp_path / "test", per_class=2)
    data = from_image_folder(tmp_path, num_workers=0)
    assert [len(data[s]) for s in ("train", "val", "test")] == [170, 30, 20]


def test_an_empty_split_folder_is_refused(tmp_path):
    write_digits(tmp_path / "train", per_class=10)
    (tmp_path / "val").mkdir()
    with pytest.raises(DataError, match="val: the val folder holds no class folders of images"):
        from_image_folder(tmp_path, num_workers=0)
    (tmp_path / "val").rmdir()
    (tmp_path / "extra").mkdir()
    with pytest.raises(DataError, match="extra: unexpected folder beside"):
        from_image_folder(tmp_path, num_workers=0)


def test_a_val_class_unknown_to_train_is_refused(tmp_path):
    write_digits(tmp_path / "train", per_class=3)
    write_digits(tmp_path / "val", per_class=1)
    (tmp_path / "val" / "zebra").mkdir()
    Image.new("L", (8, 8)).save(tmp_path / "val" / "zebra" / "z.png")
    with pytest.raises(DataError, match=r"val: class folder\(s\) 'zebra' are not in the training split"):
        from_image_folder(tmp_path, num_workers=0)


def test_rebuilt_from_its_spec(small):
    data = from_image_folder(small, image_size=[8, 8], memory_budget="1MB", num_workers=0)
    again = source_options(data)
    rebuilt = load_data(again["source"], format=again["format"], seed=again["seed"], **again["options"])
    torch.testing.assert_close(rebuilt.test["x"], data.test["x"], rtol=0, atol=0)
    assert rebuilt.spec == data.spec


def test_inputs_for_predict_match_the_training_preprocessing(small):
    data = from_image_folder(small, num_workers=0)
    assert format_info("image-folder").inputs is read_images
    streamed = from_image_folder(small, memory_budget=0, num_workers=0)
    first = streamed.test.paths[0]
    torch.testing.assert_close(torch.from_numpy(read_images(first, data.spec)), data.test["x"][:1], rtol=0, atol=0)
    everything = read_images(small, data.spec)
    assert everything.shape == (120, 1, 8, 8) and everything.dtype == np.float32
    # a raw 0-255 .npy array gets the same preprocessing through the spec
    pixels = np.asarray(Image.open(first), np.float32)[None, None]
    np.testing.assert_allclose(data.spec.apply_preprocess(pixels), read_images(first, data.spec), rtol=1e-6)


def test_inputs_refuse_what_is_not_an_image(tmp_path, small):
    data = from_image_folder(small, num_workers=0)
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(DataError, match="notes.txt: not an image file"):
        read_images(tmp_path / "notes.txt", data.spec)
    with pytest.raises(DataError, match="holds no images"):
        read_images(tmp_path, data.spec)
    (tmp_path / "bad.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match="bad.png: cannot read the image"):
        read_images(tmp_path / "bad.png", data.spec)


@pytest.mark.parametrize("text, expected", [
    (1024, 1024), (0, 0), ("512MB", 512 * 10**6), ("2GB", 2 * 10**9), ("2GiB", 2 * 2**30), ("1.5 kb", 1500),
    ("100", 100), ("64KiB", 65536),
])
def test_parse_bytes(text, expected):
    assert parse_bytes(text) == expected


@pytest.mark.parametrize("bad", ["lots", "5XB", -1, True, 1.5, "-3MB", None])
def test_parse_bytes_refuses(bad):
    with pytest.raises(ConfigError, match=r"The 'memory_budget' parameter of from_image_folder must be bytes "
                                          r"\(an int >= 0\) or a string such as '512MB'"):
        parse_bytes(bad)


def test_options_from_the_command_line(small):
    data = load_data(small, memory_budget=Text("1KB"), image_size=Text("[6, 6]"), num_workers=Text("0"))
    assert isinstance(data.train, ImageFileSplit) and data.spec.input_shape == (1, 6, 6)
    with pytest.raises(ConfigError, match="data format 'image-folder' has no option 'size'. Valid options: "
                                          "image_size, grayscale"):
        load_data(small, size=6)


@pytest.mark.parametrize("option, value, rule", [
    ("image_size", 0, "an int >= 1, a list"), ("image_size", [8], "an int >= 1, a list"),
    ("grayscale", "yes", "a bool or None"), ("augment", 1, "a bool"), ("num_workers", -1, "an int >= 0"),
])
def test_bad_options(small, option, value, rule):
    with pytest.raises(ConfigError, match=f"The '{option}' parameter of from_image_folder must be {rule}"):
        from_image_folder(small, **{option: value})


# ---------------------------------------------------------------------------------------------
# Bad input


def test_a_class_folder_without_images(tmp_path):
    write_digits(tmp_path, per_class=3)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("no images here")
    with pytest.raises(DataError, match=r"empty: the class folder holds no images; expected files ending in .png"):
        from_image_folder(tmp_path, num_workers=0)


def test_an_empty_folder(tmp_path):
    with pytest.raises(DataError, match="the folder holds no class folders"):
        from_image_folder(tmp_path)
    with pytest.raises(DataError, match="cannot tell the format of the folder"):
        load_data(tmp_path)
    with pytest.raises(DataError, match="not a folder"):
        from_image_folder(tmp_path / "missing")


def _damage(tmp_path: Path) -> tuple[Path, Path]:
    write_digits(tmp_path, per_class=10)
    corrupt, truncated = tmp_path / "3" / "corrupt.png", tmp_path / "7" / "truncated.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n this is not an image")
    big = np.random.default_rng(0).integers(0, 255, (8, 8), dtype=np.uint8)
    Image.fromarray(big).save(truncated)
    truncated.write_bytes(truncated.read_bytes()[:-40])
    return corrupt, truncated


@pytest.mark.parametrize("workers", [0, 2])
def test_corrupt_and_truncated_images_are_named(tmp_path, workers):
    corrupt, truncated = _damage(tmp_path)
    with pytest.raises(DataError, match=rf"{corrupt}: cannot read the image .*pass skip_bad_files=True") as info:
        from_image_folder(tmp_path, num_workers=workers)
    assert "\n" not in str(info.value)
    corrupt.unlink()
    with pytest.raises(DataError, match=rf"{truncated}: cannot read the image \(.*truncated"):
        from_image_folder(tmp_path, memory_budget=0, num_workers=workers)


def test_skip_bad_files_counts_them(tmp_path):
    _damage(tmp_path)
    with pytest.warns(UserWarning, match=r"skipped 2 unreadable image\(s\) \(skip_bad_files=True\)"):
        data = from_image_folder(tmp_path, skip_bad_files=True, num_workers=0)
    assert data.spec.preprocess["skipped_files"] == 2
    assert sum(len(data[s]) for s in ("train", "val", "test")) == 100
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a clean folder: no warning, no count
        (tmp_path / "3" / "corrupt.png").unlink()
        (tmp_path / "7" / "truncated.png").unlink()
        assert "skipped_files" not in from_image_folder(tmp_path, skip_bad_files=True, num_workers=0).spec.preprocess


def test_a_decompression_bomb_is_refused(tmp_path, monkeypatch):
    write_digits(tmp_path, per_class=10)
    Image.new("L", (64, 64)).save(tmp_path / "5" / "bomb.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 64 x 64 is over it, 8 x 8 is not
    for skip in (False, True):
        with pytest.raises(DataError, match=r"bomb.png: refused as a possible decompression bomb .*MAX_IMAGE_PIXELS") \
                as info:
            from_image_folder(tmp_path, skip_bad_files=skip, num_workers=2)
        assert "\n" not in str(info.value)


# ---------------------------------------------------------------------------------------------
# The target: MNIST as PNG folders, beside the built-in loader


@pytest.mark.slow
def test_mnist_png_folders_match_the_builtin_loader(tmp_path):
    root = Path(os.environ.get("ARCHLAB_SHARED_DATA", SHARED_DATA))
    if not (root / "mnist").is_dir():
        pytest.skip(f"{root / 'mnist'} not found; set ARCHLAB_SHARED_DATA to the shared data root")
    builtin = archlab.load_dataset("mnist", root, seed=0)
    for split in ("train", "val", "test"):
        images = (builtin[split]["x"][:, 0] * 255).round().to(torch.uint8).numpy()
        labels = builtin[split]["y"].numpy()
        for c in range(10):
            (tmp_path / split / str(c)).mkdir(parents=True)
        for i, (image, label) in enumerate(zip(images, labels)):
            Image.fromarray(image).save(tmp_path / split / str(label) / f"{i:05d}.png")
    folder = load_data(tmp_path, num_workers=2)
    assert [len(folder[s]) for s in ("train", "val", "test")] == [55000, 5000, 10000]
    ours = archlab.train("lenet5", folder, seed=0, quiet=True).metrics["test_accuracy"]
    reference = archlab.train("lenet5", builtin, seed=0, quiet=True).metrics["test_accuracy"]
    print(f"lenet5 test accuracy: image folder {ours:.4f}, built-in mnist {reference:.4f}")
    assert abs(ours - reference) <= 0.003


def test_a_new_labeled_folder_is_read_as_predict_reads_and_labeled_by_the_training_classes(tmp_path):
    write_digits(tmp_path / "train", per_class=12)
    spec = load_data(tmp_path / "train").spec
    images, labels = write_digits(tmp_path / "new" / "test", count=30)  # a test/ folder alone
    split = labeled_images(tmp_path / "new", spec)
    order = np.argsort(labels, kind="stable")  # class folders in the training classes' order
    assert split["y"].tolist() == labels[order].tolist()
    assert torch.equal(split["x"], torch.from_numpy(read_images(tmp_path / "new" / "test", spec)))
    (tmp_path / "new" / "test" / "x").mkdir()
    Image.fromarray(images[0]).save(tmp_path / "new" / "test" / "x" / "a.png")
    with pytest.raises(DataError, match="'x' are not in the training split"):
        labeled_images(tmp_path / "new", spec)
