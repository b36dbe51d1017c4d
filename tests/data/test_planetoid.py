"""Planetoid files: the restricted unpickler, the reference loading logic, real Cora vs PyG."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
import scipy.sparse as sp
import torch

import archlab
from archlab.data.planetoid import planetoid_graph
from archlab.data.safe_pickle import safe_load
from archlab.errors import DataError

from ..conftest import require_dataset


class RunsCode:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


class Evil:
    def __reduce__(self):
        return (eval, ("1 + 1",))


@pytest.mark.parametrize("payload", ["system", "eval", "dtype-object"])
def test_malicious_pickle_is_refused_without_running(tmp_path, payload):
    marker = tmp_path / "pwned"
    obj = {"system": RunsCode(marker), "eval": Evil(), "dtype-object": np.array([1, "a"], dtype=object)}[payload]
    path = tmp_path / "ind.cora.x"
    path.write_bytes(pickle.dumps(obj, protocol=2))
    with pytest.raises(DataError, match=r"refusing to load global|object arrays are not allowed"):
        safe_load(path)
    assert not marker.exists()


def test_plain_contents_load(tmp_path):
    m = sp.random(4, 6, density=0.4, format="csr", random_state=0, dtype=np.float32)
    path = tmp_path / "m"
    path.write_bytes(pickle.dumps(m, protocol=2))
    np.testing.assert_array_equal(safe_load(path).to_dense(), m.toarray())
    path.write_bytes(pickle.dumps(np.eye(3, dtype=np.float32), protocol=2))
    np.testing.assert_array_equal(safe_load(path), np.eye(3))
    path.write_bytes(b"not a pickle")
    with pytest.raises(DataError, match="not a readable Planetoid pickle"):
        safe_load(path)


def write_planetoid(root, name, *, allx, ally, tx, ty, x, y, graph, test_index):
    root.mkdir(parents=True, exist_ok=True)
    parts = {"x": sp.csr_matrix(x), "tx": sp.csr_matrix(tx), "allx": sp.csr_matrix(allx), "y": y, "ty": ty,
             "ally": ally, "graph": graph}
    for part, obj in parts.items():
        (root / f"ind.{name}.{part}").write_bytes(pickle.dumps(obj, protocol=2))
    (root / f"ind.{name}.test.index").write_text("\n".join(map(str, test_index)) + "\n")


def test_citeseer_isolated_test_ids_are_padded_as_the_reference_does(tmp_path):
    # 4 labelled/unlabelled nodes in allx, test ids 4..8 with id 6 missing from the release
    rng = np.random.default_rng(0)
    onehot = lambda labels: np.eye(6, dtype=np.float32)[labels]  # noqa: E731
    allx = rng.integers(0, 2, (4, 5)).astype(np.float32) + np.eye(4, 5, dtype=np.float32)
    test_index = [8, 4, 7, 5]  # row k of tx/ty belongs to node test_index[k] (the reference's reordering)
    tx = np.arange(1, 21, dtype=np.float32).reshape(4, 5)
    ty = onehot([1, 2, 3, 4])
    graph = {0: [1, 1, 0], 1: [0, 2], 2: [1], 3: [], 4: [5], 5: [4, 8], 6: [], 7: [8], 8: [7, 5]}
    write_planetoid(tmp_path, "citeseer", allx=allx, ally=onehot([0, 1, 2, 3]), tx=tx, ty=ty, x=allx[:2],
                    y=onehot([0, 1]), graph=graph, test_index=test_index)
    g = planetoid_graph(tmp_path, "citeseer")
    assert g.num_nodes == 9
    x = g.dense_x().numpy()
    np.testing.assert_allclose(x[6], 0.0)  # the missing id: zero features
    np.testing.assert_allclose(x[test_index], tx / tx.sum(1, keepdims=True), rtol=1e-6)
    np.testing.assert_allclose(x.sum(1)[[0, 1, 2, 3, 4, 5, 7, 8]], 1.0, rtol=1e-6)
    assert g.y.tolist() == [0, 1, 2, 3, 2, 4, 0, 3, 1]  # node 6 padded with label 0
    assert g.train_mask.nonzero().flatten().tolist() == [0, 1]
    assert g.val_mask.nonzero().flatten().tolist() == list(range(2, 9))  # the next 500, cut at 9 nodes
    assert g.test_mask.nonzero().flatten().tolist() == [4, 5, 7, 8]
    edges = set(zip(*g.edge_index.tolist()))
    assert (0, 0) not in edges and (0, 1) in edges and (1, 0) in edges and (8, 5) in edges and (5, 8) in edges
    assert g.num_edges == len(edges)  # no duplicates


def test_missing_files_name_the_file_and_source(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"ind\.cora\.x.*kimiyoung/planetoid"):
        archlab.load_dataset("cora", tmp_path)


def test_cora_matches_pyg_reader():
    root = require_dataset("planetoid")
    from torch_geometric.io import read_planetoid_data
    from torch_geometric.transforms import NormalizeFeatures

    data = archlab.load_dataset("cora", root.parent)
    graph = data["train"].graph
    reference = NormalizeFeatures()(read_planetoid_data(str(root), "cora"))
    assert graph.num_nodes == 2708 and graph.num_features == 1433 and graph.num_edges == 10556
    assert graph.x._nnz() == 49216
    torch.testing.assert_close(graph.dense_x(), reference.x, rtol=1e-6, atol=1e-7)
    assert torch.equal(graph.edge_index, reference.edge_index)
    assert torch.equal(graph.y, reference.y)
    for name in ("train_mask", "val_mask", "test_mask"):
        assert torch.equal(getattr(graph, name), getattr(reference, name))
    assert [len(data[s]) for s in ("train", "val", "test")] == [140, 500, 1000]
    assert data.spec.model_kwargs() == {"in_features": 1433, "num_classes": 7}
    raw = data["test"].batch()["link_x"].to_dense()  # what the reference GAE code feeds: binary words
    assert set(raw.unique().tolist()) == {0.0, 1.0} and torch.equal(raw > 0, graph.dense_x() > 0)


class DeclaresHugeArray:
    """Pickles as numpy's own reconstruction of an empty array, but declaring 10^7 x 10^7 floats."""

    def __reduce__(self):
        return (np.ndarray.__reduce__(np.zeros(0))[0], (np.ndarray, (10**7, 10**7), b"f"))


def huge_csr(rows: int, cols: int) -> sp.csr_matrix:
    """A CSR matrix of one value whose declared shape is `rows` x `cols`: the file stays tiny."""
    m = sp.csr_matrix(([1.0], ([0], [0])), shape=(rows, 3), dtype=np.float32)
    m._shape = (rows, cols)
    return m


@pytest.mark.parametrize("payload", ["reconstruct", "csr"])
def test_a_pickle_declaring_a_huge_array_is_refused_before_allocating(tmp_path, payload):
    path = tmp_path / "ind.cora.x"
    obj = DeclaresHugeArray() if payload == "reconstruct" else huge_csr(4, 10**12)
    path.write_bytes(pickle.dumps(obj, protocol=2))
    with pytest.raises(DataError, match=r"ind\.cora\.x: .* would need .* GiB, more than the 1 GiB"):
        read_planetoid_part(tmp_path, path)


def read_planetoid_part(root, path):
    """The part in `path` as `read_planetoid` turns it into an array."""
    from archlab.data.planetoid import _dense

    return _dense(safe_load(path), path)


def toy_cora(root, test_index):
    onehot = np.eye(2, dtype=np.float32)
    x = np.eye(4, 3, dtype=np.float32)
    write_planetoid(root, "cora", allx=x, ally=onehot[[0, 1, 0, 1]], tx=x[:2], ty=onehot[[0, 1]], x=x[:2],
                    y=onehot[[0, 1]], graph={i: [] for i in range(6)}, test_index=test_index)


@pytest.mark.parametrize("name, test_index, message", [
    ("cora", [4, 10**12], r"ind\.cora\.test\.index: node ids must lie in \[0, 6\)"),
    ("cora", [-1, 4], r"ind\.cora\.test\.index: node ids must be >= 0"),
    ("citeseer", [4, 10**12], r"ind\.citeseer\.test\.index: its test ids span"),
])
def test_test_ids_beyond_the_graph_are_refused_by_file(tmp_path, name, test_index, message):
    toy_cora(tmp_path, test_index)
    if name == "citeseer":
        for f in tmp_path.glob("ind.cora.*"):
            f.rename(tmp_path / f.name.replace("cora", "citeseer"))
    with pytest.raises(DataError, match=message):
        planetoid_graph(tmp_path, name)
